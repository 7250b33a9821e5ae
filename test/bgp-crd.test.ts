// The BGPPeer and BGPAdvertisement CustomResourceDefinitions must describe
// the same objects as the zod schemas the agent validates with: the same
// fields (nested too), the same required ones and defaults, and the same
// verdict on objects whose problem is their shape. Address and community
// syntax are the agent's alone (a bad peer is reported and skipped).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';
import { schemaProblems, type Schema as ApiSchema } from '../control/apiserver-double/schema.js';
import { parse } from 'yaml';
import { z } from 'zod';

import { bgpAdvertisementSchema } from '../control/resources/bgp-advertisement.js';
import { bgpPeerSchema } from '../control/resources/bgp-peer.js';

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: Schema | boolean;
  enum?: unknown[];
  minLength?: number;
  minimum?: number;
  maximum?: number;
  default?: unknown;
}

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: string;
    names: { kind: string; plural: string };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: Schema };
    }[];
  };
}

function load(file: string): { crd: Crd; root: Schema } {
  const crd = parse(
    readFileSync(join(import.meta.dirname, '..', 'charts', 'xlb', 'crds', file), 'utf8'),
  ) as Crd;
  return { crd, root: crd.spec.versions[0]!.schema.openAPIV3Schema };
}

/** What the API server says of `value` against the CRD's schema (strict field validation; no CEL). */
function problems(schema: Schema, value: unknown): string[] {
  return schemaProblems(value, schema as ApiSchema);
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: unknown = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap();
    else if (s instanceof z.ZodPipe) s = s.in;
    else return s as z.ZodType;
  }
}

/**
 * Walks a zod object schema and the CRD's schema side by side: the same
 * keys, required fields and defaults at every level of nesting.
 */
function sameShape(zod: z.ZodType, crd: Schema, path: string): void {
  const s = unwrap(zod);
  if (s instanceof z.ZodArray) {
    expect(crd.type, path).toBe('array');
    sameShape(s.element as z.ZodType, crd.items!, `${path}[]`);
    return;
  }
  if (!(s instanceof z.ZodObject)) return;
  expect(crd.type, path).toBe('object');
  const shape = s.shape as Record<string, z.ZodType>;
  if (crd.additionalProperties !== undefined) return; // maps (matchLabels)
  expect(Object.keys(crd.properties ?? {}).sort(), path).toEqual(Object.keys(shape).sort());
  const required = Object.entries(shape)
    .filter(([, f]) => !f.safeParse(undefined).success)
    .map(([k]) => k)
    .sort();
  expect([...(crd.required ?? [])].sort(), `${path} required`).toEqual(required);
  for (const [key, f] of Object.entries(shape)) {
    const r = f.safeParse(undefined);
    const zodDefault = r.success ? r.data : undefined;
    // A default that is a whole object is written field by field in the CRD.
    if (typeof zodDefault !== 'object' || Array.isArray(zodDefault))
      expect(crd.properties![key]!.default, `${path}.${key} default`).toEqual(zodDefault);
    sameShape(f, crd.properties![key]!, `${path}.${key}`);
  }
}

const cases = [
  {
    file: 'bgppeer.yaml',
    kind: 'BGPPeer',
    plural: 'bgppeers',
    zod: bgpPeerSchema,
    agree: [
      ['minimal', { peerAddress: '192.0.2.1', peerASN: 65001, localASN: 65002 }, true],
      [
        'everything',
        {
          peerAddress: '2001:db8::1',
          peerASN: 4200000000,
          localASN: 65002,
          port: 1179,
          sourceAddress: '2001:db8::2',
          holdTime: 30,
          keepaliveTime: 10,
          connectRetryTime: 5,
          passwordSecretRef: { namespace: 'xlb', name: 'tor-md5', key: 'pw' },
          ebgpMultiHop: true,
          gracefulRestart: { enabled: true, restartTime: 60 },
          bfd: { enabled: true, minRxMs: 100, minTxMs: 100, detectMultiplier: 5 },
          nodeSelector: { matchLabels: { rack: 'r1' } },
          passive: true,
        },
        true,
      ],
      ['no peerASN', { peerAddress: '192.0.2.1', localASN: 65002 }, false],
      ['ASN zero', { peerAddress: '192.0.2.1', peerASN: 0, localASN: 65002 }, false],
      ['ASN too big', { peerAddress: '192.0.2.1', peerASN: 4294967296, localASN: 1 }, false],
      ['ASN quoted', { peerAddress: '192.0.2.1', peerASN: '65001', localASN: 1 }, false],
      ['port 0', { peerAddress: '192.0.2.1', peerASN: 1, localASN: 1, port: 0 }, false],
      ['misspelt field', { peerAddress: '192.0.2.1', peerASN: 1, localASN: 1, holdtime: 9 }, false],
      [
        'secret without name',
        { peerAddress: '192.0.2.1', peerASN: 1, localASN: 1, passwordSecretRef: { key: 'a' } },
        false,
      ],
      [
        'bfd multiplier too big',
        { peerAddress: '192.0.2.1', peerASN: 1, localASN: 1, bfd: { detectMultiplier: 256 } },
        false,
      ],
    ] as [string, unknown, boolean][],
  },
  {
    file: 'bgpadvertisement.yaml',
    kind: 'BGPAdvertisement',
    plural: 'bgpadvertisements',
    zod: bgpAdvertisementSchema,
    agree: [
      ['empty', {}, true],
      [
        'everything',
        {
          ipPools: ['public'],
          peers: ['tor-a'],
          communities: ['65000:1'],
          largeCommunities: ['65000:1:2'],
          localPreference: 150,
        },
        true,
      ],
      ['pools not a list', { ipPools: 'public' }, false],
      ['local preference negative', { localPreference: -1 }, false],
      ['community a number', { communities: [65000] }, false],
      ['misspelt field', { community: ['65000:1'] }, false],
    ] as [string, unknown, boolean][],
  },
];

describe.each(cases)('the $kind CRD', ({ file, kind, plural, zod, agree }) => {
  const { crd, root } = load(file);

  it('names the kind xlb reads', () => {
    expect(crd.apiVersion).toBe('apiextensions.k8s.io/v1');
    expect(crd.kind).toBe('CustomResourceDefinition');
    expect(crd.metadata.name).toBe(`${plural}.xlb.dev`);
    expect(crd.spec.group).toBe('xlb.dev');
    expect(crd.spec.scope).toBe('Cluster');
    expect(crd.spec.names).toMatchObject({ kind, plural });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([
      ['v1alpha1', true, true],
    ]);
  });

  it('has the fields of the zod schema at every level, with the same required fields and defaults', () => {
    sameShape(zod.shape.spec, root.properties!['spec']!, 'spec');
    expect(root.required).toEqual(['spec']);
  });

  it.each(agree)('agrees with zod: %s', (_name, spec, valid) => {
    const obj = { apiVersion: 'xlb.dev/v1alpha1', kind, metadata: { name: 'x' }, spec };
    expect(zod.safeParse(obj).success).toBe(valid);
    expect(problems(root, obj)).toEqual(valid ? [] : expect.arrayContaining([expect.any(String)]));
  });
});
