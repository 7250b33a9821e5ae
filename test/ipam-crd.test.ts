// The IPPool CustomResourceDefinition must describe the same object as the zod
// schema the agent validates with: the same fields, the same required ones, the
// same defaults, and the same verdict on objects whose problem is their shape.
// Address syntax and label-key rules are the agent's alone (reported in the
// pool's Invalid condition); the cases below pin that split too.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';
import { schemaProblems, type Schema as ApiSchema } from '../control/apiserver-double/schema.js';
import { parse } from 'yaml';
import { z } from 'zod';

import { allocate, toIPPoolStatus } from '../control/ipam/index.js';
import { ipPoolSchema, ipPoolSpecSchema } from '../control/resources/ip-pool.js';
import { labelSelectorSchema } from '../control/resources/label-selector.js';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: unknown[];
  minItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  default?: unknown;
}

const crdPath = join(import.meta.dirname, '..', 'charts', 'xlb', 'crds', 'ippool.yaml');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment
const crd = parse(readFileSync(crdPath, 'utf8'));
/* eslint-disable @typescript-eslint/no-unsafe-member-access */
const version = (crd.spec.versions as Record<string, unknown>[])[0]!;
const root = (version['schema'] as { openAPIV3Schema: Schema }).openAPIV3Schema;
/* eslint-enable @typescript-eslint/no-unsafe-member-access */
const specSchema = root.properties!['spec']!;
const statusSchema = root.properties!['status']!;

/** What the API server says of `value` against the CRD's schema (strict field validation; no CEL). */
function problems(schema: Schema, value: unknown): string[] {
  return schemaProblems(value, schema as ApiSchema);
}

/** The object's shape of a zod object schema, through optional/default wrappers. */
function shapeOf(schema: z.ZodType): Record<string, z.ZodType> {
  let s: unknown = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap();
  if (s instanceof z.ZodArray) return shapeOf(s.element as z.ZodType);
  if (!(s instanceof z.ZodObject)) throw new Error('not an object schema');
  return s.shape;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

describe('the IPPool CRD', () => {
  it('names the kind xlb reads', () => {
    /* eslint-disable @typescript-eslint/no-unsafe-member-access */
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.kind).toBe('CustomResourceDefinition');
    expect(crd.metadata.name).toBe('ippools.xlb.dev');
    expect(crd.spec.group).toBe('xlb.dev');
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names).toMatchObject({ kind: 'IPPool', plural: 'ippools', singular: 'ippool' });
    expect(crd.spec.versions).toHaveLength(1);
    /* eslint-enable @typescript-eslint/no-unsafe-member-access */
    expect(version).toMatchObject({
      name: 'v1alpha1',
      served: true,
      storage: true,
      subresources: { status: {} },
    });
  });

  it('has the fields of the zod schema, with the same required fields and defaults', () => {
    const shape = shapeOf(ipPoolSpecSchema);
    expect(sorted(Object.keys(specSchema.properties!))).toEqual(sorted(Object.keys(shape)));
    const required = Object.entries(shape)
      .filter(([, s]) => !s.safeParse(undefined).success)
      .map(([k]) => k);
    expect(sorted(specSchema.required ?? [])).toEqual(sorted(required));
    for (const [key, s] of Object.entries(shape)) {
      const r = s.safeParse(undefined);
      const zodDefault = r.success ? r.data : undefined;
      expect(specSchema.properties![key]!.default, key).toEqual(zodDefault);
    }
    for (const key of ['serviceSelector', 'namespaceSelector']) {
      const sel = specSchema.properties![key]!;
      expect(sorted(Object.keys(sel.properties!))).toEqual(
        sorted(Object.keys(shapeOf(labelSelectorSchema))),
      );
      const expr = sel.properties!['matchExpressions']!.items!;
      const zodExpr = shapeOf(shapeOf(labelSelectorSchema)['matchExpressions']!);
      expect(sorted(Object.keys(expr.properties!))).toEqual(sorted(Object.keys(zodExpr)));
      expect(sorted(expr.required!)).toEqual(['key', 'operator']);
      expect(expr.properties!['operator']!.enum).toEqual(['In', 'NotIn', 'Exists', 'DoesNotExist']);
    }
    expect(sorted(root.required!)).toEqual(['spec']);
  });

  const base = { apiVersion: 'xlb.dev/v1alpha1', kind: 'IPPool', metadata: { name: 'p' } };
  const withSpec = (spec: unknown) => ({ ...base, spec });

  // [name, object, verdict of both]
  const agree: [string, unknown, boolean][] = [
    ['minimal', withSpec({ addresses: ['192.0.2.0/28'] }), true],
    [
      'everything',
      withSpec({
        addresses: ['192.0.2.0/28', '2001:db8::/120', '198.51.100.1-198.51.100.9'],
        autoAssign: false,
        avoidBuggyIPs: true,
        disabled: true,
        serviceSelector: {
          matchLabels: { team: 'a' },
          matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }],
        },
        namespaceSelector: { matchExpressions: [{ key: 'edge', operator: 'Exists' }] },
      }),
      true,
    ],
    ['no spec', base, false],
    ['no addresses', withSpec({ autoAssign: true }), false],
    ['empty addresses', withSpec({ addresses: [] }), false],
    ['addresses not a list', withSpec({ addresses: '192.0.2.0/28' }), false],
    ['quoted boolean', withSpec({ addresses: ['192.0.2.0/28'], autoAssign: 'yes' }), false],
    ['misspelt field', withSpec({ addresses: ['192.0.2.0/28'], autoassign: true }), false],
    [
      'unknown operator',
      withSpec({
        addresses: ['192.0.2.0/28'],
        serviceSelector: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['b'] }] },
      }),
      false,
    ],
    [
      'expression without key',
      withSpec({
        addresses: ['192.0.2.0/28'],
        serviceSelector: { matchExpressions: [{ operator: 'Exists' }] },
      }),
      false,
    ],
    [
      'misspelt selector field',
      withSpec({ addresses: ['192.0.2.0/28'], namespaceSelector: { matchLabel: { a: 'b' } } }),
      false,
    ],
    [
      'label value not a string',
      withSpec({ addresses: ['192.0.2.0/28'], serviceSelector: { matchLabels: { a: 7 } } }),
      false,
    ],
  ];

  it.each(agree)('agrees with zod: %s', (_name, obj, valid) => {
    expect(ipPoolSchema.safeParse(obj).success).toBe(valid);
    expect(problems(root, obj).length === 0).toBe(valid);
  });

  // What only the agent checks (the CRD cannot say it without CEL IP
  // libraries that older clusters lack): reported as the pool's Invalid condition.
  it.each([
    ['a bad CIDR', withSpec({ addresses: ['192.0.2.0/33'] })],
    ['host bits set', withSpec({ addresses: ['192.0.2.5/28'] })],
    ['overlapping entries', withSpec({ addresses: ['192.0.2.0/28', '192.0.2.8/29'] })],
    [
      'a bad label key',
      withSpec({ addresses: ['192.0.2.0/28'], serviceSelector: { matchLabels: { '-a': 'b' } } }),
    ],
  ])('leaves %s to the agent', (_name, obj) => {
    expect(problems(root, obj)).toEqual([]);
    expect(ipPoolSchema.safeParse(obj).success).toBe(false);
    const status = allocate({ pools: [obj], services: [] }).pools[0]!;
    expect(status.conditions.find((c) => c.type === 'Invalid')?.status).toBe('True');
  });

  it('accepts the status the allocator writes', () => {
    const pools = [
      withSpec({ addresses: ['192.0.2.0/28', '2001:db8::/64'] }),
      { ...withSpec({ addresses: ['192.0.2.8/29'] }), metadata: { name: 'later' } },
      { ...withSpec({ addresses: ['x'] }), metadata: { name: 'broken' } },
    ];
    const result = allocate({ pools, services: [] });
    expect(result.pools).toHaveLength(3);
    for (const p of result.pools) {
      const status = toIPPoolStatus(p, new Date('2024-05-01T00:00:00Z'), undefined, 1);
      expect(problems(statusSchema, status), p.name).toEqual([]);
    }
    expect(sorted(Object.keys(statusSchema.properties!))).toEqual(['conditions', 'ipv4', 'ipv6']);
  });

  it('prints columns that exist in the schema', () => {
    const columns = version['additionalPrinterColumns'] as { name: string; jsonPath: string }[];
    expect(columns.map((c) => c.name)).toContain('Ready');
    for (const c of columns) {
      const fields = c.jsonPath
        .replace(/\[\?\(.*?\)\]/g, '')
        .split('.')
        .filter((f) => f !== '');
      if (fields[0] === 'metadata') continue;
      let s: Schema | undefined = root;
      for (const f of fields) s = s?.items?.properties?.[f] ?? s?.properties?.[f];
      expect(s, c.jsonPath).toBeDefined();
    }
  });
});
