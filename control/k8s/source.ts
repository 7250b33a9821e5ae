// The Kubernetes source: informers on Services, EndpointSlices, Nodes,
// IPPools and Namespaces (and, for the BGP speaker, BGPPeers and
// BGPAdvertisements, which readiness never waits for), feeding the
// ClusterStore (namespace labels are kept here, for the allocator). Objects are stored as the API server sends them
// (it validated them; the model and allocator cope with anything else), less
// managedFields and the last-applied annotation; times stay RFC 3339 strings.
//
// Secrets, for BGP MD5 passwords, only in the agent's own namespace (a
// namespaced list and watch: the chart grants a Role there, no more), and
// stripped on arrival to the values of the keys BGPPeers reference
// (store/secrets.ts). A peer that starts referencing a key the store dropped
// makes the Secrets be listed again; readiness never waits for them.
//
// While the API server is unreachable, or a kind is not served (the IPPool
// CRD not installed), the store keeps what it last read, so the datapath
// keeps forwarding; each kind retries with back-off on its own. After every
// (re)list the kind's whole state replaces the store's, which notifies only
// about objects that changed, so deletions missed while disconnected are
// applied and nothing else moves.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';

import { logger, type Logger } from '../observe/log.js';
import { objectKey, type ResourceKind, type ResourceTypes } from '../resources/kinds.js';
import type { ClusterStore, StoreChanges } from '../store/cluster-store.js';
import {
  keepWanted,
  narrowStored,
  secretFromApi,
  secretStoreKey,
  wantedSecretKeys,
  wantsMore,
  type WantedSecretKeys,
} from '../store/secrets.js';

import {
  Informer,
  type InformerHandlers,
  type InformerStatus,
  type InformerResource,
  type InformerTimings,
  type KubeObjectJson,
} from './informer.js';
import { JsonClient } from './json-client.js';
import { NamespaceLabels, type NamespaceLabelMap } from './namespaces.js';
import { sourceMetrics, type SourceMetrics } from './source-metrics.js';
import { ALL_SOURCE_KINDS, SOURCE_KINDS, WATCHED_KINDS, type SourceKind } from './watched-kinds.js';

export {
  ALL_SOURCE_KINDS,
  BGP_SOURCE_KINDS,
  SOURCE_KINDS,
  type SourceKind,
} from './watched-kinds.js';
export type { InformerStatus as KindStatus } from './informer.js';

export interface KubernetesSourceOptions extends InformerTimings {
  /** Loaded by the caller: in-cluster, or from a kubeconfig file. */
  kubeConfig: KubeConfig;
  store: ClusterStore;
  /** Default all of SOURCE_KINDS; add BGP_SOURCE_KINDS for the BGP speaker. */
  kinds?: readonly SourceKind[];
  /**
   * The agent's own namespace: its Secrets are watched for the BGPPeers'
   * MD5 passwords. No Secrets are read when absent.
   */
  secretNamespace?: string;
  /** Default: logger('k8s-source'). */
  log?: Logger;
  /** Where to register xlb_k8s_* metrics; none when absent. */
  registry?: Registry;
}

export interface KubernetesSourceStatus {
  /** Every kind was listed at least once. */
  synced: boolean;
  kinds: Partial<Record<SourceKind, InformerStatus>>;
  /** The Secrets of the agent's namespace, when watched. */
  secrets?: InformerStatus;
}

/** The Secrets of one namespace, as an informer reads them. */
export function secretResource(namespace: string): InformerResource {
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
    whenMissing: `the API server does not serve v1 Secrets in namespace ${namespace}`,
    whenForbidden:
      `the agent may not list and watch Secrets in namespace ${namespace}: grant it with a ` +
      'Role and RoleBinding there (the chart does, in its release namespace); BGPPeers with ' +
      'a passwordSecretRef stay invalid until then',
  };
}

export class KubernetesSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubernetesSourceError';
  }
}

export class KubernetesSource {
  private readonly store: ClusterStore;
  private readonly log: Logger;
  private readonly metrics: SourceMetrics | undefined;
  private readonly informers = new Map<SourceKind, Informer>();
  private readonly namespaces = new NamespaceLabels();
  private readonly unsynced: Set<SourceKind>;
  private readonly synced: Promise<void>;
  private readonly secrets:
    { namespace: string; informer: Informer; loaded: WantedSecretKeys } | undefined;
  private unsubscribeStore: (() => void) | undefined;
  private resolveSynced!: () => void;
  private rejectSynced!: (err: Error) => void;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(options: KubernetesSourceOptions) {
    this.store = options.store;
    this.log = options.log ?? logger('k8s-source');
    this.metrics = options.registry === undefined ? undefined : sourceMetrics(options.registry);
    const kinds = [...new Set(options.kinds ?? SOURCE_KINDS)];
    for (const kind of kinds)
      if (!ALL_SOURCE_KINDS.includes(kind))
        throw new KubernetesSourceError(
          `unknown kind '${String(kind)}': the source reads ${ALL_SOURCE_KINDS.join(', ')}`,
        );
    if (kinds.length === 0) throw new KubernetesSourceError('the source needs at least one kind');
    // Optional kinds are read when served, but sync never waits for them.
    this.unsynced = new Set(kinds.filter((k) => !WATCHED_KINDS[k].optional));
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    // Nobody may be waiting when stop() rejects it; the rejection is for
    // whoever calls whenSynced(), not an unhandled one.
    this.synced.catch(() => undefined);
    if (this.unsynced.size === 0) this.resolveSynced();

    const client = new JsonClient(options.kubeConfig);
    for (const kind of kinds) {
      this.informers.set(
        kind,
        new Informer({
          kubeConfig: options.kubeConfig,
          backoff: options.backoff,
          pageSize: options.pageSize,
          watchTimeoutSeconds: options.watchTimeoutSeconds,
          healthyAfterMs: options.healthyAfterMs,
          requestTimeoutMs: options.requestTimeoutMs,
          client,
          resource: WATCHED_KINDS[kind],
          handlers: kind === 'Namespace' ? this.namespaces : this.storeHandlers(kind),
          log: this.log,
          observer: {
            listed: (_objects, relist) => this.listed(kind, relist),
            failed: () => this.metrics?.failed(kind),
            connected: (up) => this.metrics?.connected(kind, up),
          },
        }),
      );
      this.metrics?.connected(kind, false);
    }
    if (options.secretNamespace !== undefined) {
      const namespace = options.secretNamespace;
      if (namespace === '')
        throw new KubernetesSourceError('secretNamespace must name a namespace (it is empty)');
      this.secrets = {
        namespace,
        loaded: new Map(),
        informer: new Informer({
          kubeConfig: options.kubeConfig,
          backoff: options.backoff,
          pageSize: options.pageSize,
          watchTimeoutSeconds: options.watchTimeoutSeconds,
          healthyAfterMs: options.healthyAfterMs,
          requestTimeoutMs: options.requestTimeoutMs,
          client,
          resource: secretResource(namespace),
          handlers: this.secretHandlers(namespace),
          log: this.log,
        }),
      };
    }
  }

  /** Starts listing and watching; see whenSynced(). */
  start(): void {
    if (this.state !== 'new')
      throw new KubernetesSourceError('a Kubernetes source starts once; make a new one');
    this.state = 'running';
    this.log.info(
      {
        kinds: [...this.informers.keys()],
        ...(this.secrets === undefined ? {} : { secretNamespace: this.secrets.namespace }),
      },
      'watching the API server',
    );
    if (this.secrets !== undefined)
      this.unsubscribeStore = this.store.subscribe((changes) => this.peersChanged(changes));
    for (const informer of this.informers.values()) informer.start();
    this.secrets?.informer.start();
  }

  /** Ends every watch, request and timer. The store keeps its content. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    if (this.unsynced.size > 0)
      this.rejectSynced(
        new KubernetesSourceError(
          `stopped before every kind was listed (not yet: ${[...this.unsynced].join(', ')})`,
        ),
      );
    this.unsubscribeStore?.();
    await Promise.all(
      [...this.informers.values(), ...(this.secrets ? [this.secrets.informer] : [])].map((i) =>
        i.stop(),
      ),
    );
  }

  /**
   * Resolves once every kind was listed (the agent's readiness); rejects if
   * the source stops first. A kind the server does not serve keeps it
   * pending: leave it out of `kinds` if that is expected.
   */
  whenSynced(): Promise<void> {
    return this.synced;
  }

  isSynced(): boolean {
    return this.unsynced.size === 0;
  }

  status(): KubernetesSourceStatus {
    const kinds: Partial<Record<SourceKind, InformerStatus>> = {};
    for (const [kind, informer] of this.informers) kinds[kind] = informer.status();
    return {
      synced: this.isSynced(),
      kinds,
      ...(this.secrets === undefined ? {} : { secrets: this.secrets.informer.status() }),
    };
  }

  /**
   * Labels per namespace (for IPPool namespaceSelector), frozen; the same
   * object until a namespace changes. Empty unless Namespaces are watched.
   */
  namespaceLabels(): NamespaceLabelMap {
    return this.namespaces.all();
  }

  /** `listener` runs after each burst of namespace label changes. Returns the unsubscribe. */
  onNamespaceLabels(listener: () => void): () => void {
    return this.namespaces.subscribe(listener);
  }

  private listed(kind: SourceKind, relist: boolean): void {
    if (relist) this.metrics?.relisted(kind);
    if (!this.unsynced.delete(kind) || this.unsynced.size > 0) return;
    this.log.info(
      { kinds: [...this.informers.keys()] },
      'every kind listed: in sync with the API server',
    );
    this.resolveSynced();
  }

  /** The keys BGPPeers reference now, in the agent's namespace. */
  private wantedNow(namespace: string): WantedSecretKeys {
    return wantedSecretKeys(this.store.bgpPeers(), namespace);
  }

  /**
   * BGPPeers changed: a key referenced anew was dropped on arrival, so the
   * Secrets are listed again; a key no longer referenced is dropped now.
   */
  private peersChanged(changes: StoreChanges): void {
    const secrets = this.secrets;
    if (secrets === undefined || (changes.BGPPeer?.size ?? 0) === 0) return;
    const wanted = this.wantedNow(secrets.namespace);
    if (wantsMore(secrets.loaded, wanted)) secrets.informer.relist();
    secrets.loaded = wanted;
    for (const stored of this.store.secrets()) this.store.applySecret(narrowStored(stored, wanted));
  }

  private secretHandlers(namespace: string): InformerHandlers {
    const store = this.store;
    const read = (obj: KubeObjectJson) => {
      const values = secretFromApi(obj);
      return values?.metadata.namespace === namespace ? values : undefined;
    };
    return {
      replace: (objects) => {
        const wanted = this.wantedNow(namespace);
        if (this.secrets !== undefined) this.secrets.loaded = wanted;
        const kept = new Map<string, ReturnType<typeof keepWanted>>();
        for (const obj of objects) {
          const values = read(obj);
          if (values !== undefined) kept.set(values.metadata.name, keepWanted(values, wanted));
        }
        store.replaceAll({ Secret: [...kept.values()] });
      },
      upsert: (obj) => {
        const values = read(obj);
        if (values !== undefined) store.applySecret(keepWanted(values, this.wantedNow(namespace)));
      },
      remove: (obj) => {
        const values = read(obj);
        if (values !== undefined)
          store.deleteSecret(secretStoreKey(namespace, values.metadata.name));
      },
    };
  }

  private storeHandlers<K extends ResourceKind>(kind: K): InformerHandlers {
    const store = this.store;
    const keyOf = (obj: KubeObjectJson): string | undefined => {
      try {
        return objectKey(kind, obj as ResourceTypes[K]);
      } catch (err) {
        // The API server never sends an object without a name; if one comes,
        // it is skipped, said once here, and the rest goes on.
        this.log.warn({ kind, err: (err as Error).message }, `${kind} skipped: it cannot be keyed`);
        return undefined;
      }
    };
    return {
      replace: (objects) => {
        const byKey = new Map<string, ResourceTypes[K]>();
        for (const obj of objects) {
          const key = keyOf(obj);
          if (key !== undefined) byKey.set(key, obj as ResourceTypes[K]);
        }
        store.replaceAll({ [kind]: [...byKey.values()] });
      },
      upsert: (obj) => {
        if (keyOf(obj) !== undefined) store.apply(kind, obj as ResourceTypes[K]);
      },
      remove: (obj) => {
        const key = keyOf(obj);
        if (key !== undefined) store.delete(kind, key);
      },
    };
  }
}
