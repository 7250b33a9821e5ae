// The resource types served: the built-in kinds, plus those of every CRD in
// the store (kept in step by the server as CRDs are written).
import { deploymentType } from './kinds/apps.js';
import { namespaceType, nodeType, podType, secretType } from './kinds/core.js';
import { crdType } from './kinds/crd.js';
import { customTypes } from './kinds/custom.js';
import { leaseType } from './kinds/coordination.js';
import { endpointSliceType } from './kinds/discovery.js';
import { coreEventType, eventsV1Type } from './kinds/events.js';
import { serviceType } from './kinds/service.js';
import { apiVersionOf, type KubeObject, type ResourceType } from './types.js';

export const BUILTIN_TYPES: ResourceType[] = [
  namespaceType,
  serviceType,
  nodeType,
  podType,
  secretType,
  coreEventType,
  endpointSliceType,
  leaseType,
  eventsV1Type,
  deploymentType,
  crdType,
];

/** Kubernetes version priority: GA before beta before alpha, higher numbers first. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string): [number, number, number] | undefined => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return undefined;
    const stage = m[2] === undefined ? 3 : m[2] === 'beta' ? 2 : 1;
    return [stage, Number(m[1]), Number(m[3] ?? 0)];
  };
  const pa = parse(a);
  const pb = parse(b);
  if (pa === undefined || pb === undefined) {
    if (pa !== undefined) return -1;
    if (pb !== undefined) return 1;
    return a.localeCompare(b);
  }
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pb[i] ?? 0) - (pa[i] ?? 0);
  return 0;
}

export interface GroupInfo {
  name: string;
  /** Preferred first. */
  versions: string[];
}

export class Kinds {
  private readonly custom = new Map<string, ResourceType[]>();

  all(): ResourceType[] {
    return [...BUILTIN_TYPES, ...[...this.custom.values()].flat()];
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    return this.all().find(
      (t) => t.group === group && t.version === version && t.plural === plural,
    );
  }

  forObject(apiVersion: string, kind: string): ResourceType | undefined {
    return this.all().find((t) => apiVersionOf(t) === apiVersion && t.kind === kind);
  }

  /**
   * The types a test names: "Service", "services", "svc", "Event.events.k8s.io",
   * "ippools.xlb.dev"; the preferred version when several serve it.
   */
  lookup(name: string): ResourceType | undefined {
    const dot = name.indexOf('.');
    const base = dot < 0 ? name : name.slice(0, dot);
    const group = dot < 0 ? undefined : name.slice(dot + 1);
    const lower = base.toLowerCase();
    const matches = this.all().filter(
      (t) =>
        (group === undefined ? true : t.group === group) &&
        (t.kind.toLowerCase() === lower ||
          t.plural === lower ||
          t.singular === lower ||
          t.shortNames.includes(lower)),
    );
    // The core group wins a bare name ("Event"), as kubectl resolves it.
    matches.sort(
      (a, b) =>
        (a.group === '' ? -1 : 0) - (b.group === '' ? -1 : 0) ||
        compareVersions(a.version, b.version),
    );
    return matches[0];
  }

  groups(): GroupInfo[] {
    const byGroup = new Map<string, Set<string>>();
    for (const t of this.all()) {
      let s = byGroup.get(t.group);
      if (s === undefined) byGroup.set(t.group, (s = new Set()));
      s.add(t.version);
    }
    return [...byGroup.entries()].map(([name, vs]) => ({
      name,
      versions: [...vs].sort(compareVersions),
    }));
  }

  /** Storage keys of namespaced resources (a namespace's deletion empties them). */
  namespacedStorages(): string[] {
    return [
      ...new Set(
        this.all()
          .filter((t) => t.namespaced)
          .map((t) => t.storage),
      ),
    ];
  }

  /** One type per storage key, for iterating over stores. */
  storageType(storage: string): ResourceType | undefined {
    return this.all().find((t) => t.storage === storage);
  }

  setCRD(crd: KubeObject): void {
    this.custom.set(crd.metadata.name ?? '', customTypes(crd));
  }

  removeCRD(name: string): void {
    this.custom.delete(name);
  }
}
