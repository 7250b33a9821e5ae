// The API server double: an in-process node:http server on 127.0.0.1 that
// @kubernetes/client-node and kubectl use unmodified over plain HTTP, with a
// programmatic side for tests (seed and read objects without HTTP, force
// relists, inject faults, read the request log, drop and restore the
// network).
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { KubeConfig } from '@kubernetes/client-node';

import { crdController, namespaceController, syncCustomTypes } from './controllers.js';
import { ApiError } from './errors.js';
import { Faults, type Fault, type RequestRecord } from './faults.js';
import { handle, type ServerParts } from './handler.js';
import { Kinds } from './kinds.js';
import { Operations, writeContext } from './operations.js';
import { Store } from './store.js';
import { apiVersionOf, type ClusterView, type KubeObject, type ResourceType } from './types.js';
import { Watches } from './watch.js';

export interface ApiServerOptions {
  /** Default 0: any free port. */
  port?: number;
  /** Service CIDRs, primary family first; default dual-stack 10.96.0.0/12 and fd00:10:96::/112. */
  serviceCIDRs?: string[];
  /** Default [30000, 32767]. */
  nodePortRange?: [number, number];
  /** Changes kept for watches to resume from; default 10000. */
  historyLimit?: number;
  /** Send BOOKMARK events to watches that allow them every this many ms; default never (see bookmark()). */
  bookmarkIntervalMs?: number;
  /** Create default/kubernetes (ClusterIP 10.96.0.1, port 443) as a cluster has; default true. */
  kubernetesService?: boolean;
}

const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export class ApiServer {
  private readonly store: Store;
  private readonly kinds = new Kinds();
  private readonly ops: Operations;
  private readonly watches: Watches;
  private readonly faults = new Faults();
  private readonly log: RequestRecord[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly http: Server;
  private timer: NodeJS.Timeout | undefined;
  private boundPort = 0;

  private constructor(private readonly options: ApiServerOptions) {
    this.store = new Store(options.historyLimit ?? 10_000);
    const cluster: ClusterView = {
      list: (storage) => this.store.list(storage),
      serviceCIDRs: options.serviceCIDRs ?? ['10.96.0.0/12', 'fd00:10:96::/112'],
      nodePortRange: options.nodePortRange ?? [30000, 32767],
    };
    this.ops = new Operations(this.store, cluster);
    this.ops.controllers.push(
      namespaceController(this.store, this.kinds, this.ops),
      crdController(this.store, this.kinds, this.ops),
    );
    this.watches = new Watches(this.store);
    syncCustomTypes(this.store, this.kinds, (storage) => this.watches.closeStorage(storage));
    const parts: ServerParts = {
      kinds: this.kinds,
      ops: this.ops,
      store: this.store,
      watches: this.watches,
      faults: this.faults,
      log: this.log,
      address: () => `127.0.0.1:${this.boundPort}`,
    };
    this.http = createServer((req, res) => void handle(parts, req, res));
    // Watches stay open indefinitely; Node's default timeouts would cut them.
    this.http.requestTimeout = 0;
    this.http.headersTimeout = 0;
    this.http.keepAliveTimeout = 60_000;
    this.http.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: ApiServerOptions = {}): Promise<ApiServer> {
    const server = new ApiServer(options);
    server.seed();
    await server.listen(options.port ?? 0);
    if (options.bookmarkIntervalMs !== undefined && options.bookmarkIntervalMs > 0) {
      server.timer = setInterval(() => server.bookmark(), options.bookmarkIntervalMs);
      server.timer.unref();
    }
    return server;
  }

  private seed(): void {
    for (const name of SYSTEM_NAMESPACES) {
      this.ops.create(this.type('Namespace'), undefined, { metadata: { name } }, writeContext());
    }
    if (this.options.kubernetesService !== false) {
      this.ops.create(
        this.type('Service'),
        'default',
        {
          metadata: {
            name: 'kubernetes',
            labels: { component: 'apiserver', provider: 'kubernetes' },
          },
          spec: { ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] },
        },
        writeContext(),
      );
    }
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, '127.0.0.1', () => {
        this.http.off('error', reject);
        this.boundPort = (this.http.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  get port(): number {
    return this.boundPort;
  }

  /** http://127.0.0.1:PORT */
  get url(): string {
    return `http://127.0.0.1:${this.boundPort}`;
  }

  /** A client-node KubeConfig for this server (current context namespace: `namespace`). */
  kubeConfig(namespace = 'default'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'xlb-test', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'xlb-test' }],
      contexts: [{ name: 'xlb-test', cluster: 'xlb-test', user: 'xlb-test', namespace }],
      currentContext: 'xlb-test',
    });
    return kc;
  }

  /** A served type by kind, resource or short name, optionally ".group" ("Service", "svc", "Event.events.k8s.io", "ippools.xlb.dev"). */
  type(kind: string): ResourceType {
    const t = this.kinds.lookup(kind);
    if (t === undefined) throw new Error(`the API server does not serve ${kind}`);
    return t;
  }

  /** Copies of the stored objects of a kind (all namespaces unless one is given), in key order. */
  objects(kind: string, namespace?: string): KubeObject[] {
    const t = this.type(kind);
    return this.store
      .list(t.storage, t.namespaced ? namespace : undefined)
      .map((o) => this.ops.served(t, o));
  }

  /** One object, or undefined. */
  get(kind: string, name: string, namespace = 'default'): KubeObject | undefined {
    const t = this.type(kind);
    const o = this.store.get(t.storage, t.namespaced ? namespace : '', name);
    return o === undefined ? undefined : this.ops.served(t, o);
  }

  /**
   * Creates or replaces an object without HTTP, as if written by a controller
   * with full access: defaults, validation and allocation apply, status is
   * taken from the object (kept from the stored one when absent), no
   * resourceVersion precondition, watches see the change. Throws ApiError.
   */
  apply<T extends { apiVersion?: string; kind?: string; metadata?: object }>(obj: T): KubeObject {
    const o = obj as unknown as KubeObject;
    const t = this.kinds.forObject(o.apiVersion ?? '', o.kind ?? '');
    if (t === undefined)
      throw new Error(`the API server does not serve ${o.apiVersion ?? ''} ${o.kind ?? ''}`);
    return this.ops.apply(t, { ...o, metadata: { ...(o.metadata ?? {}) } });
  }

  /** Deletes like an HTTP DELETE (finalizers hold the object back); false when absent. */
  remove(kind: string, name: string, namespace = 'default'): boolean {
    const t = this.type(kind);
    try {
      this.ops.delete(t, t.namespaced ? namespace : undefined, name, {}, writeContext());
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.code === 404) return false;
      throw e;
    }
  }

  /** The current (global) resourceVersion. */
  get resourceVersion(): string {
    return String(this.store.revision);
  }

  /** Forgets watch history: watches from any earlier resourceVersion get 410 Gone and must relist. */
  compact(): void {
    this.store.compact();
  }

  /** Sends a BOOKMARK at the current resourceVersion to every watch that allows bookmarks. */
  bookmark(): void {
    this.watches.bookmark();
  }

  /** Ends every open watch (clients re-watch from their last resourceVersion). */
  closeWatches(): void {
    this.watches.closeAll();
  }

  get openWatches(): number {
    return this.watches.count;
  }

  /** Makes the next `count` matching requests fail with `code`. */
  failNext(fault: Fault): void {
    this.faults.add(fault);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Requests so far, oldest first. */
  requests(filter?: Partial<RequestRecord>): RequestRecord[] {
    return this.log
      .filter(
        (r) =>
          filter === undefined ||
          Object.entries(filter).every(([k, v]) => r[k as keyof RequestRecord] === v),
      )
      .map((r) => ({ ...r }));
  }

  clearRequests(): void {
    this.log.length = 0;
  }

  /** apiVersion of a kind's preferred version, e.g. "discovery.k8s.io/v1". */
  apiVersion(kind: string): string {
    return apiVersionOf(this.type(kind));
  }

  private async shut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.watches.closeAll();
    this.http.closeAllConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** The API server becomes unreachable: listener closed, every connection dropped; state kept. */
  async disconnect(): Promise<void> {
    await this.shut();
  }

  /** Listens again on the same port after disconnect(). */
  async reconnect(): Promise<void> {
    await this.listen(this.boundPort);
  }

  /** Closes the listener and every connection, open watches included. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.http.listening) await this.shut();
  }
}
