// The typed in-memory view of the cluster that every derivation reads.
// Sources write whole objects (apply/delete, or replaceAll when they know
// the whole state); readers get deterministic, key-ordered lists and one
// batched notification per burst of changes.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';

import { SERVICE_NAME_LABEL } from '../resources/endpoint-slice.js';
import type { BGPAdvertisement } from '../resources/bgp-advertisement.js';
import type { BGPPeer } from '../resources/bgp-peer.js';
import type { IPPool } from '../resources/ip-pool.js';
import {
  objectKey,
  RESOURCE_KINDS,
  type ResourceKind,
  type ResourceTypes,
} from '../resources/kinds.js';

import { sameContent } from './equal.js';
import { secretStoreKey, type StoredSecret } from './secrets.js';

/** Kinds added after the first four; optional in StoreChanges so that code building a change set by hand for the model keeps compiling. */
type LaterKind = 'BGPPeer' | 'BGPAdvertisement';

/**
 * Keys (`namespace/name`, or `name` for cluster-scoped kinds) that changed,
 * per kind. The store always fills every kind.
 */
export type StoreChanges = {
  readonly [K in Exclude<ResourceKind, LaterKind>]: ReadonlySet<string>;
} & {
  readonly [K in LaterKind]?: ReadonlySet<string>;
} & {
  /** Secrets (`namespace/name`): only BGP passwords, see secrets.ts. */
  readonly Secret?: ReadonlySet<string>;
};

export type StoreListener = (changes: StoreChanges) => void;

/** The whole state of the kinds present; kinds left out are not touched. */
export type StoreSnapshot = { [K in ResourceKind]?: readonly ResourceTypes[K][] } & {
  Secret?: readonly StoredSecret[];
};

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

type Tables = { [K in ResourceKind]: Map<string, ResourceTypes[K]> };

function emptyTables(): Tables {
  return {
    Service: new Map(),
    EndpointSlice: new Map(),
    Node: new Map(),
    IPPool: new Map(),
    BGPPeer: new Map(),
    BGPAdvertisement: new Map(),
  };
}

function emptyChanges(): Record<ResourceKind | 'Secret', Set<string>> {
  return {
    Secret: new Set(),
    Service: new Set(),
    EndpointSlice: new Set(),
    Node: new Set(),
    IPPool: new Set(),
    BGPPeer: new Set(),
    BGPAdvertisement: new Set(),
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function byKey(a: [string, unknown], b: [string, unknown]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

function sliceOwner(slice: V1EndpointSlice): string | undefined {
  const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  const namespace = slice.metadata?.namespace;
  return service === undefined || namespace === undefined ? undefined : `${namespace}/${service}`;
}

export class ClusterStore {
  private readonly tables = emptyTables();
  /** Key-ordered lists per kind, rebuilt on the first read after a change. */
  private readonly sorted = new Map<ResourceKind, readonly unknown[]>();
  /** `namespace/service` -> keys of the EndpointSlices labelled with it. */
  private readonly slicesByService = new Map<string, Set<string>>();
  /** Kept apart from the resource kinds: stripped on the way in, never validated or listed with them. */
  private readonly secretTable = new Map<string, StoredSecret>();
  private readonly listeners = new Set<StoreListener>();
  private pending: Record<ResourceKind | 'Secret', Set<string>> | undefined;

  /**
   * Stores a copy of `obj` (frozen: readers share it, so nobody may change it).
   * Returns false, and notifies nobody, when an equal object is already stored.
   */
  apply<K extends ResourceKind>(kind: K, obj: ResourceTypes[K]): boolean {
    return this.put(kind, objectKey(kind, obj), obj);
  }

  /** Returns whether the object existed. */
  delete<K extends ResourceKind>(kind: K, key: string): boolean {
    const table = this.tables[kind] as Map<string, ResourceTypes[K]>;
    const old = table.get(key);
    if (old === undefined) return false;
    table.delete(key);
    if (kind === 'EndpointSlice') this.unindexSlice(key, old as V1EndpointSlice);
    this.changed(kind, key);
    return true;
  }

  /**
   * Makes each kind in `snapshot` hold exactly the given objects: adds, changes
   * and removes as needed, in one notification. Checked whole before anything
   * changes, so a bad snapshot leaves the store as it was.
   */
  replaceAll(snapshot: StoreSnapshot): void {
    const keyed: { [K in ResourceKind]?: Map<string, ResourceTypes[K]> } = {};
    for (const kind of RESOURCE_KINDS) {
      const objects = snapshot[kind];
      if (objects !== undefined) keyed[kind] = this.keyAll(kind, objects) as never;
    }
    const secrets = snapshot.Secret === undefined ? undefined : this.keySecrets(snapshot.Secret);
    if (secrets !== undefined) {
      for (const key of [...this.secretTable.keys()]) if (!secrets.has(key)) this.deleteSecret(key);
      for (const secret of secrets.values()) this.applySecret(secret);
    }
    for (const kind of RESOURCE_KINDS) {
      const next = keyed[kind] as Map<string, ResourceTypes[typeof kind]> | undefined;
      if (next === undefined) continue;
      for (const key of [...this.tables[kind].keys()]) if (!next.has(key)) this.delete(kind, key);
      for (const [key, obj] of next) this.put(kind, key, obj);
    }
  }

  get<K extends ResourceKind>(kind: K, key: string): ResourceTypes[K] | undefined {
    return (this.tables[kind] as Map<string, ResourceTypes[K]>).get(key);
  }

  /** Every object of `kind`, ordered by key. */
  list<K extends ResourceKind>(kind: K): readonly ResourceTypes[K][] {
    let list = this.sorted.get(kind);
    if (list === undefined) {
      list = [...this.tables[kind].entries()].sort(byKey).map(([, obj]) => obj);
      this.sorted.set(kind, list);
    }
    return list as readonly ResourceTypes[K][];
  }

  services(): readonly V1Service[] {
    return this.list('Service');
  }

  service(namespace: string, name: string): V1Service | undefined {
    return this.tables.Service.get(`${namespace}/${name}`);
  }

  /** The slices labelled kubernetes.io/service-name=`serviceName` in `namespace`, ordered by key. */
  endpointSlicesFor(namespace: string, serviceName: string): V1EndpointSlice[] {
    const keys = this.slicesByService.get(`${namespace}/${serviceName}`);
    if (keys === undefined) return [];
    return [...keys].sort().map((k) => this.tables.EndpointSlice.get(k)!);
  }

  nodes(): readonly V1Node[] {
    return this.list('Node');
  }

  node(name: string): V1Node | undefined {
    return this.tables.Node.get(name);
  }

  pools(): readonly IPPool[] {
    return this.list('IPPool');
  }

  pool(name: string): IPPool | undefined {
    return this.tables.IPPool.get(name);
  }

  bgpPeers(): readonly BGPPeer[] {
    return this.list('BGPPeer');
  }

  bgpAdvertisements(): readonly BGPAdvertisement[] {
    return this.list('BGPAdvertisement');
  }

  /** Stores a copy of `secret`; false, notifying nobody, when an equal one is stored. */
  applySecret(secret: StoredSecret): boolean {
    const key = secretStoreKey(secret.metadata.namespace, secret.metadata.name);
    const old = this.secretTable.get(key);
    if (old !== undefined && sameContent(old, secret)) return false;
    this.secretTable.set(key, deepFreeze(structuredClone(secret)));
    this.changed('Secret', key);
    return true;
  }

  /** `key` is `namespace/name`. Returns whether the Secret was stored. */
  deleteSecret(key: string): boolean {
    if (!this.secretTable.delete(key)) return false;
    this.changed('Secret', key);
    return true;
  }

  secret(namespace: string, name: string): StoredSecret | undefined {
    return this.secretTable.get(secretStoreKey(namespace, name));
  }

  /** Every Secret stored, ordered by key. */
  secrets(): readonly StoredSecret[] {
    return [...this.secretTable.entries()].sort(byKey).map(([, s]) => s);
  }

  /**
   * `listener` runs once per burst of changes (everything changed within one
   * synchronous run of the caller), after the burst. Returns the unsubscribe.
   */
  subscribe(listener: StoreListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private keyAll<K extends ResourceKind>(
    kind: K,
    objects: readonly ResourceTypes[K][],
  ): Map<string, ResourceTypes[K]> {
    const keyed = new Map<string, ResourceTypes[K]>();
    for (const obj of objects) {
      const key = objectKey(kind, obj);
      if (keyed.has(key))
        throw new StoreError(
          `the snapshot holds ${kind} '${key}' twice; a source must resolve duplicates`,
        );
      keyed.set(key, obj);
    }
    return keyed;
  }

  private keySecrets(secrets: readonly StoredSecret[]): Map<string, StoredSecret> {
    const keyed = new Map<string, StoredSecret>();
    for (const secret of secrets) {
      const key = secretStoreKey(secret.metadata.namespace, secret.metadata.name);
      if (keyed.has(key))
        throw new StoreError(
          `the snapshot holds Secret '${key}' twice; a source must resolve duplicates`,
        );
      keyed.set(key, secret);
    }
    return keyed;
  }

  private put<K extends ResourceKind>(kind: K, key: string, obj: ResourceTypes[K]): boolean {
    const table = this.tables[kind] as Map<string, ResourceTypes[K]>;
    const old = table.get(key);
    if (old !== undefined && sameContent(old, obj)) return false;
    // A copy, so a source that reuses or edits its object cannot change what
    // readers see behind the store's back (or hide a change from apply).
    const copy = deepFreeze(structuredClone(obj));
    table.set(key, copy);
    if (kind === 'EndpointSlice') {
      if (old !== undefined) this.unindexSlice(key, old as V1EndpointSlice);
      this.indexSlice(key, copy as V1EndpointSlice);
    }
    this.changed(kind, key);
    return true;
  }

  private indexSlice(key: string, slice: V1EndpointSlice): void {
    const owner = sliceOwner(slice);
    if (owner === undefined) return;
    let keys = this.slicesByService.get(owner);
    if (keys === undefined) this.slicesByService.set(owner, (keys = new Set()));
    keys.add(key);
  }

  private unindexSlice(key: string, slice: V1EndpointSlice): void {
    const owner = sliceOwner(slice);
    if (owner === undefined) return;
    const keys = this.slicesByService.get(owner);
    keys?.delete(key);
    if (keys?.size === 0) this.slicesByService.delete(owner);
  }

  private changed(kind: ResourceKind | 'Secret', key: string): void {
    if (kind !== 'Secret') this.sorted.delete(kind);
    if (this.pending === undefined) {
      this.pending = emptyChanges();
      // A microtask runs after the caller's synchronous burst, and leaves no
      // timer behind that could keep a process alive.
      queueMicrotask(() => this.flush());
    }
    this.pending[kind].add(key);
  }

  private flush(): void {
    const changes = this.pending;
    this.pending = undefined;
    if (changes === undefined) return;
    const errors: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(changes);
      } catch (err) {
        errors.push(err);
      }
    }
    // One listener's bug must not starve the others, but it must not vanish either.
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'store listeners failed');
  }
}
