// OpenAPI v3, the part kubectl reads: the index at /openapi/v3 and one
// document per group-version whose PATCH operations declare the
// fieldValidation parameter (so kubectl apply validates server-side, with
// ?fieldValidation=Strict, instead of downloading schemas to validate
// client-side) and whose component schemas carry
// x-kubernetes-group-version-kind (kubectl explain).
// The PATCH operations do not list strategic-merge-patch as a body type, so
// kubectl computes strategic patches for built-in kinds from its compiled-in
// Go types, which carry exactly the real patch metadata. Schemas of built-in
// kinds are outlines; those of custom resources are their CRD schemas.
import { createHash } from 'node:crypto';

import type { Obj } from './json.js';
import type { Kinds } from './kinds.js';
import { KUBE_VERSION } from './discovery.js';
import { groupVersionPath, type ResourceType } from './types.js';

const PACKAGES: Record<string, string> = {
  '': 'io.k8s.api.core',
  'discovery.k8s.io': 'io.k8s.api.discovery',
  'coordination.k8s.io': 'io.k8s.api.coordination',
  'events.k8s.io': 'io.k8s.api.events',
  'apiextensions.k8s.io': 'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions',
};

function definitionName(t: ResourceType): string {
  const pkg = PACKAGES[t.group] ?? t.group.split('.').reverse().join('.');
  return `${pkg}.${t.version}.${t.kind}`;
}

const query = (name: string): Obj => ({
  name,
  in: 'query',
  schema: { type: 'string', uniqueItems: true },
});

function operation(t: ResourceType, action: string, extra: Obj = {}): Obj {
  const ref = { $ref: `#/components/schemas/${definitionName(t)}` };
  return {
    operationId: `${action}${t.kind}`,
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: t.group, version: t.version, kind: t.kind },
    ...extra,
  };
}

function paths(t: ResourceType): Obj {
  const base = `/${groupVersionPath(t)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`;
  const writeParams = [
    query('dryRun'),
    query('fieldManager'),
    query('fieldValidation'),
    query('pretty'),
  ];
  const patchBody = {
    content: {
      'application/json-patch+json': { schema: { type: 'object' } },
      'application/merge-patch+json': { schema: { type: 'object' } },
    },
    required: true,
  };
  const item = {
    get: operation(t, 'get'),
    put: operation(t, 'put', { parameters: writeParams }),
    patch: operation(t, 'patch', {
      parameters: [...writeParams, query('force')],
      requestBody: patchBody,
    }),
    delete: operation(t, 'delete'),
  };
  const out: Obj = {
    [base]: { get: operation(t, 'list'), post: operation(t, 'post', { parameters: writeParams }) },
    [`${base}/{name}`]: item,
  };
  if (t.status) {
    out[`${base}/{name}/status`] = {
      get: operation(t, 'get'),
      put: operation(t, 'put', { parameters: writeParams }),
      patch: operation(t, 'patch', {
        parameters: [...writeParams, query('force')],
        requestBody: patchBody,
      }),
    };
  }
  return out;
}

function schemaOf(t: ResourceType): Obj {
  return {
    description: `${t.kind} (served by the xlb test API server)`,
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
    },
    ...t.schema,
    'x-kubernetes-group-version-kind': [{ group: t.group, version: t.version, kind: t.kind }],
  };
}

export function openAPIDocument(kinds: Kinds, gvPath: string): Obj | undefined {
  const types = kinds.all().filter((t) => groupVersionPath(t) === gvPath);
  if (types.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: KUBE_VERSION.gitVersion },
    paths: Object.assign({}, ...types.map(paths)) as Obj,
    components: { schemas: Object.fromEntries(types.map((t) => [definitionName(t), schemaOf(t)])) },
  };
}

function hash(doc: Obj): string {
  return createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
}

export function openAPIIndex(kinds: Kinds): Obj {
  const gvPaths = [...new Set(kinds.all().map(groupVersionPath))].sort();
  const entries: Obj = {};
  for (const p of gvPaths) {
    const doc = openAPIDocument(kinds, p);
    if (doc !== undefined) entries[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash(doc)}` };
  }
  return { paths: entries };
}
