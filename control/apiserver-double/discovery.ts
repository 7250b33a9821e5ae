// Discovery as kubectl 1.35 reads it: aggregated discovery (apidiscovery.k8s.io
// v2, and v2beta1) when the Accept header asks for it, otherwise the legacy
// documents (/api, /apis, /api/v1, /apis/<group>[/<version>]).
import type { Obj } from './json.js';
import { compareVersions, type Kinds } from './kinds.js';
import type { ResourceType } from './types.js';

export const KUBE_VERSION = { major: '1', minor: '35', gitVersion: 'v1.35.2' };

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS = ['get', 'patch', 'update'];

export function versionInfo(): Obj {
  return {
    ...KUBE_VERSION,
    emulationMajor: KUBE_VERSION.major,
    emulationMinor: KUBE_VERSION.minor,
    minCompatibilityMajor: KUBE_VERSION.major,
    minCompatibilityMinor: '34',
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: 'go1.25.0',
    compiler: 'gc',
    platform: `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

function groupVersion(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

export function apiVersions(serverAddress: string): Obj {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function apiGroup(name: string, versions: string[]): Obj {
  const list = versions.map((v) => ({ groupVersion: groupVersion(name, v), version: v }));
  return { name, versions: list, preferredVersion: list[0] };
}

export function apiGroupList(kinds: Kinds): Obj {
  return {
    kind: 'APIGroupList',
    apiVersion: 'v1',
    groups: kinds
      .groups()
      .filter((g) => g.name !== '')
      .map((g) => apiGroup(g.name, g.versions)),
  };
}

export function apiGroupDoc(kinds: Kinds, name: string): Obj | undefined {
  const g = kinds.groups().find((x) => x.name === name && name !== '');
  return g === undefined
    ? undefined
    : { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(g.name, g.versions) };
}

export function apiResourceList(kinds: Kinds, group: string, version: string): Obj | undefined {
  const types = kinds.all().filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources: Obj[] = [];
  for (const t of types) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: VERBS,
      ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
      ...(t.categories.length > 0 ? { categories: t.categories } : {}),
    });
    if (t.status) {
      resources.push({
        name: `${t.plural}/status`,
        singularName: '',
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: STATUS_VERBS,
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion(group, version),
    resources,
  };
}

function resourceDiscovery(t: ResourceType): Obj {
  const gvk = { group: t.group, version: t.version, kind: t.kind };
  return {
    resource: t.plural,
    responseKind: gvk,
    scope: t.namespaced ? 'Namespaced' : 'Cluster',
    singularResource: t.singular,
    verbs: VERBS,
    ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
    ...(t.categories.length > 0 ? { categories: t.categories } : {}),
    ...(t.status
      ? { subresources: [{ subresource: 'status', responseKind: gvk, verbs: STATUS_VERBS }] }
      : {}),
  };
}

/** The APIGroupDiscoveryList for /api (core only) or /apis (every other group). */
export function aggregatedDiscovery(kinds: Kinds, core: boolean, apiVersion: string): Obj {
  const items = kinds
    .groups()
    .filter((g) => (g.name === '') === core)
    .map((g) => ({
      metadata: { name: g.name, creationTimestamp: null },
      versions: [...g.versions].sort(compareVersions).map((v) => ({
        version: v,
        resources: kinds
          .all()
          .filter((t) => t.group === g.name && t.version === v)
          .map(resourceDiscovery),
        freshness: 'Current',
      })),
    }));
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}
