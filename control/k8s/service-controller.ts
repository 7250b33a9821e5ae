// The leader's Service controller: turns the allocator's decisions into the
// Kubernetes objects every agent reads. Level-triggered: at start and after
// any store change one pass runs over all Services and pools (passes never
// overlap; a change during a pass schedules one more). Per pass:
//  1. the allocator decides every address (restoring what status shows);
//  2. each Service of ours gets the finalizer, then its ingress and condition;
//  3. Services being deleted or no longer ours that carry the finalizer are
//     cleaned up (cleanup.ts), each on its own;
//  4. the allocator's events become Kubernetes Events on the Services;
//  5. each IPPool's status is written when it changed.
// Every write is conditioned on the resourceVersion it was computed from; a
// failure is logged, counted and retried with backoff for that object alone.
import { hostname } from 'node:os';

import type { KubeConfig, V1Service } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';

import {
  Allocator,
  type AllocationEvent,
  type PoolStatus,
  type ServiceAllocation,
} from '../ipam/index.js';
import { resolveOptions } from '../model/options.js';
import { classifyService } from '../model/ownership.js';
import type { ModelOptions } from '../model/types.js';
import { logger, type Logger } from '../observe/log.js';
import type { ClusterStore } from '../store/cluster-store.js';
import { classifyFailure, Reachability, type CallFailure } from './api-call.js';
import { CleanupTasks, releaseService, type CleanupPort } from './cleanup.js';
import { ConflictRetriesExhausted, converge } from './converge.js';
import { EventRecorder, type EventSubject } from './events.js';
import { PoolStatusWriter, poolStatusWrite, type PoolObject } from './pool-status-writer.js';
import { serviceControllerMetrics, type WriteResource } from './service-metrics.js';
import {
  cleanupCause,
  finalizersOf,
  hasOurFinalizer,
  ingressIps,
  isDeleting,
  LB_FINALIZER,
  ownedStatus,
  poolMembership,
} from './service-status.js';
import { ServiceWriter, type ServiceWrite } from './service-writer.js';

export type { CleanupPort } from './cleanup.js';

/** events.k8s.io reportingController of every event the controller writes. */
export const REPORTING_CONTROLLER = 'xlb.dev/controller';

export interface ServiceControllerTiming {
  /** Deadline of one API request. */
  requestTimeoutMs: number;
  /** 409s tolerated per object per pass before it waits for a retry. */
  conflictRetries: number;
  /** First pause after a 409; doubles per conflict. */
  conflictBackoffMs: number;
  /** First retry of an object whose write failed; doubles per failure up to retryMaxMs. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** Objects written at the same time within a pass. */
  concurrency: number;
  /** An identical event within this window adds to the first one's count. */
  eventSeriesWindowMs: number;
}

const DEFAULT_TIMING: ServiceControllerTiming = {
  requestTimeoutMs: 30_000,
  conflictRetries: 5,
  conflictBackoffMs: 50,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  concurrency: 8,
  eventSeriesWindowMs: 10 * 60_000,
};

export interface ServiceControllerOptions {
  store: ClusterStore;
  /** Labels per namespace name, for IPPools' namespaceSelector. */
  namespaceLabels: () => Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** loadBalancerClass and defaultClass: which Services are ours. */
  options?: Partial<ModelOptions>;
  kubeConfig: KubeConfig;
  log?: Logger;
  registry?: Registry;
  cleanup: CleanupPort;
  /** events.k8s.io reportingInstance: this process (pod or node name); default the host name. */
  identity?: string;
  timing?: Partial<ServiceControllerTiming>;
  now?: () => Date;
}

interface Failure {
  attempts: number;
  /** No retry before this time, unless the object changed. */
  notBefore: number;
  /** resourceVersion of the object that failed. */
  resourceVersion: string | undefined;
}

/** The newest copy of an object we wrote, until the store shows it (or something newer). */
interface Newest<T> {
  object: T;
  /** resourceVersions the store may still show that are older than `object`. */
  stale: Set<string>;
}

interface Versioned {
  metadata?: { resourceVersion?: string };
}

const rvOf = (o: Versioned | undefined): string | undefined => o?.metadata?.resourceVersion;

function serviceKey(svc: V1Service): string | undefined {
  const ns = svc.metadata?.namespace;
  const name = svc.metadata?.name;
  return ns === undefined || name === undefined ? undefined : `${ns}/${name}`;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const ACTIONS: Record<AllocationEvent['reason'], string> = {
  IPAllocated: 'Allocate',
  AllocationFailed: 'Allocate',
  IPReleased: 'Release',
};

/** Runs `jobs` with at most `limit` at a time. */
async function runLimited(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) await jobs[next++]!();
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker));
}

export class ServiceController {
  private readonly allocator: Allocator;
  private readonly options: ModelOptions;
  private readonly timing: ServiceControllerTiming;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly writer: ServiceWriter;
  private readonly pools: PoolStatusWriter;
  private readonly recorder: EventRecorder;
  private readonly metrics;
  private readonly reach: Reachability;
  private readonly cleanups = new CleanupTasks();

  private started = false;
  private abort = new AbortController();
  private unsubscribe: (() => void) | undefined;
  private current: Promise<void> | undefined;
  private again = false;
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  private readonly failures = new Map<string, Failure>();
  private readonly newestServices = new Map<string, Newest<V1Service>>();
  private readonly newestPools = new Map<string, Newest<PoolObject>>();
  /** Addresses each Service of ours was last given, for cleanups after its status lost them. */
  private readonly held = new Map<string, string[]>();

  constructor(private readonly o: ServiceControllerOptions) {
    this.options = resolveOptions(o.options);
    this.allocator = new Allocator(this.options);
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.log = o.log ?? logger('service-controller');
    this.now = o.now ?? (() => new Date());
    this.writer = new ServiceWriter(o.kubeConfig, this.timing.requestTimeoutMs);
    this.pools = new PoolStatusWriter(o.kubeConfig, this.timing.requestTimeoutMs);
    this.metrics = serviceControllerMetrics(o.registry);
    this.reach = new Reachability(this.log);
    this.recorder = new EventRecorder({
      kubeConfig: o.kubeConfig,
      controller: REPORTING_CONTROLLER,
      instance: o.identity ?? hostname(),
      log: this.log,
      timeoutMs: this.timing.requestTimeoutMs,
      seriesWindowMs: this.timing.eventSeriesWindowMs,
      retryBackoffMs: this.timing.retryInitialMs,
      maxBackoffMs: this.timing.retryMaxMs,
      now: this.now,
      onFailure: (f) => this.countFailure('event', f),
    });
  }

  get running(): boolean {
    return this.started;
  }

  /** Starts allocating (this agent became the leader). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    this.unsubscribe = this.o.store.subscribe(() => this.requestPass());
    this.log.info('started: this agent allocates LoadBalancer addresses');
    this.requestPass();
  }

  /**
   * Stops (leadership lost): no write starts after this call; requests in
   * flight are aborted, retries and timers cancelled, and everything this
   * term assumed (in-flight assignments, newest copies) forgotten. Resolves
   * once the last pass and cleanup have ended.
   */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.abort.abort(new Error('the Service controller stopped'));
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.immediate = undefined;
    this.retryTimer = undefined;
    this.again = false;
    await Promise.all([
      this.current ?? Promise.resolve(),
      this.cleanups.cancelAll(),
      this.recorder.stop(),
    ]);
    this.allocator.reset();
    this.failures.clear();
    this.newestServices.clear();
    this.newestPools.clear();
    this.held.clear();
    this.metrics.clear();
    this.log.info('stopped: this agent no longer allocates');
  }

  /** Runs a pass soon for a change the store does not see (namespace labels). */
  refresh(): void {
    this.requestPass();
  }

  private requestPass(): void {
    if (!this.started) return;
    if (this.current !== undefined) {
      this.again = true;
      return;
    }
    if (this.immediate !== undefined) return;
    // The next turn: a burst of store changes makes one pass.
    this.immediate = setImmediate(() => {
      this.immediate = undefined;
      this.runPass();
    });
  }

  private runPass(): void {
    if (!this.started || this.current !== undefined) return;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const signal = this.abort.signal;
    this.current = this.pass(signal)
      .catch((e: unknown) => {
        // A bug, not an API failure (those stay per object): keep going, loudly.
        this.log.error({ err: e }, 'a Service controller pass failed');
        const attempts = (this.failures.get('pass')?.attempts ?? 0) + 1;
        this.failures.set('pass', {
          attempts,
          notBefore: Date.now() + this.backoffMs(attempts),
          resourceVersion: undefined,
        });
      })
      .finally(() => {
        this.current = undefined;
        if (!this.started) return;
        if (this.again) {
          this.again = false;
          this.requestPass();
        } else this.scheduleRetry();
      });
  }

  private backoffMs(attempts: number): number {
    return Math.min(this.timing.retryMaxMs, this.timing.retryInitialMs * 2 ** (attempts - 1));
  }

  private scheduleRetry(): void {
    if (this.failures.size === 0 || this.retryTimer !== undefined) return;
    const now = Date.now();
    let at = Infinity;
    for (const f of this.failures.values()) at = Math.min(at, f.notBefore);
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.requestPass();
      },
      Math.max(0, at - now),
    );
  }

  /** Whether `key` failed recently and has not changed since: it waits for its retry. */
  private waiting(key: string, rv: string | undefined): boolean {
    const f = this.failures.get(key);
    return f !== undefined && Date.now() < f.notBefore && f.resourceVersion === rv;
  }

  private countFailure(resource: WriteResource, f: CallFailure): void {
    this.reach.note(f);
    if (f.kind !== 'aborted') this.metrics.writeError(resource, f.reason);
  }

  /** Records a failed write of `key` and logs it (unreachable: quietly, see Reachability). */
  private failed(
    resource: WriteResource,
    key: string,
    rv: string | undefined,
    e: unknown,
    signal: AbortSignal,
  ): void {
    if (e instanceof ConflictRetriesExhausted) {
      this.log.warn({ object: key, error: e.message }, `could not update ${resource}; will retry`);
    } else {
      const f = classifyFailure(e, signal);
      if (f.kind === 'aborted') return;
      this.countFailure(resource, f);
      if (f.kind !== 'unreachable') {
        const level = this.failures.has(key) ? 'debug' : 'warn';
        this.log[level](
          { object: key, code: 'code' in f ? f.code : undefined, error: f.message },
          `could not update ${resource}; will retry`,
        );
      }
    }
    const attempts = (this.failures.get(key)?.attempts ?? 0) + 1;
    this.failures.set(key, {
      attempts,
      notBefore: Date.now() + this.backoffMs(attempts),
      resourceVersion: rv,
    });
  }

  private succeeded(key: string): void {
    this.failures.delete(key);
  }

  /** Told of every answer (a write's or a fresh read's): the API server is reachable, and this is the newest copy. */
  private seen<T extends Versioned>(table: Map<string, Newest<T>>, key: string, basis: T) {
    return (o: T): void => {
      this.reach.answered();
      this.remember(table, key, basis, o);
    };
  }

  /** The newest copy we know of `obj` (ours, when the store has not caught up with a write). */
  private newest<T extends Versioned>(table: Map<string, Newest<T>>, key: string, obj: T): T {
    const n = table.get(key);
    if (n === undefined) return obj;
    const rv = rvOf(obj);
    if (rv !== undefined && n.stale.has(rv)) return n.object;
    // The store caught up, or moved past what we wrote.
    table.delete(key);
    return obj;
  }

  private remember<T extends Versioned>(
    table: Map<string, Newest<T>>,
    key: string,
    basis: T,
    obj: T,
  ): void {
    const n = table.get(key) ?? { object: basis, stale: new Set<string>() };
    for (const rv of [rvOf(basis), rvOf(n.object)]) if (rv !== undefined) n.stale.add(rv);
    const rv = rvOf(obj);
    if (rv !== undefined) n.stale.delete(rv);
    n.object = obj;
    table.set(key, n);
  }

  private async pass(signal: AbortSignal): Promise<void> {
    const stored = this.o.store.services();
    const present = new Set<string>();
    const services: V1Service[] = [];
    for (const s of stored) {
      const key = serviceKey(s);
      if (key === undefined) continue;
      present.add(key);
      services.push(this.newest(this.newestServices, key, s));
    }
    for (const key of [...this.newestServices.keys()])
      if (!present.has(key)) this.newestServices.delete(key);
    for (const key of [...this.held.keys()]) if (!present.has(key)) this.held.delete(key);
    const storedPools = this.o.store.pools();
    const poolNames = new Set(storedPools.map((p) => p.metadata.name));
    for (const key of [...this.newestPools.keys()])
      if (!poolNames.has(key)) this.newestPools.delete(key);
    const pools = storedPools.map((p) =>
      this.newest<PoolObject>(this.newestPools, p.metadata.name, p),
    );

    const result = this.allocator.reconcile({
      pools,
      services,
      namespaces: this.o.namespaceLabels(),
    });
    this.metrics.observe(result);

    const byKey = new Map<string, V1Service>();
    for (const s of services) byKey.set(serviceKey(s)!, s);
    this.recordEvents(result.events, byKey);

    const allocations = new Map(result.services.map((a) => [a.service, a]));
    const inOurPools = poolMembership(pools);
    const jobs: (() => Promise<void>)[] = [];
    // Failure keys this pass retries or that still wait: the others need nothing any more.
    const pending = new Set<string>();
    for (const svc of services) {
      const key = serviceKey(svc)!;
      const fkey = `svc:${key}`;
      const alloc = allocations.get(key);
      if (alloc !== undefined && !isDeleting(svc)) {
        this.held.set(
          key,
          alloc.addresses.map((a) => a.address),
        );
        pending.add(fkey);
        if (this.cleanups.has(key)) {
          // Ours again while its cleanup runs: stop that; its end brings another pass.
          this.cleanups.cancel(key);
          continue;
        }
        if (this.waiting(fkey, rvOf(svc))) continue;
        jobs.push(() => this.syncOwned(key, svc, alloc, signal));
      } else if (cleanupCause(svc, this.options) !== 'none') {
        pending.add(fkey);
        this.startCleanup(key, svc, inOurPools, signal);
      }
    }
    const poolByName = new Map(pools.map((p) => [p.metadata?.name, p]));
    for (const status of result.pools) {
      const fkey = `pool:${status.name}`;
      const current = poolByName.get(status.name);
      if (current === undefined) continue;
      pending.add(fkey);
      if (this.waiting(fkey, rvOf(current))) continue;
      jobs.push(() => this.syncPool(status, current, signal));
    }
    for (const key of [...this.failures.keys()])
      if (key !== 'pass' && !pending.has(key)) this.failures.delete(key);
    await runLimited(
      jobs.map((job) => () => (signal.aborted ? Promise.resolve() : job())),
      this.timing.concurrency,
    );
    this.failures.delete('pass');
  }

  private recordEvents(events: readonly AllocationEvent[], byKey: Map<string, V1Service>): void {
    for (const e of events) {
      const svc = byKey.get(e.service);
      if (svc === undefined) continue;
      this.log.info(
        { service: e.service, reason: e.reason, detail: e.detail, address: e.address },
        e.message,
      );
      this.recorder.record(this.subject(svc), {
        type: e.type,
        reason: e.reason,
        action: ACTIONS[e.reason],
        note: e.message,
      });
    }
  }

  private subject(svc: V1Service): EventSubject {
    return {
      apiVersion: 'v1',
      kind: 'Service',
      namespace: svc.metadata?.namespace ?? 'default',
      name: svc.metadata?.name ?? '',
      ...(svc.metadata?.uid !== undefined ? { uid: svc.metadata.uid } : {}),
    };
  }

  /** Finalizer first, then ingress and condition, for one Service of ours. */
  private async syncOwned(
    key: string,
    svc: V1Service,
    alloc: ServiceAllocation,
    signal: AbortSignal,
  ): Promise<void> {
    const [namespace, name] = [svc.metadata!.namespace!, svc.metadata!.name!];
    // What the allocator's view of this Service was based on. A fresh read
    // that shows other addresses means someone else wrote them (another
    // leader, a person): decide again from that, never overwrite it blindly.
    const basis = ingressIps(svc);
    let superseded = false;
    let fresh: V1Service | undefined;
    try {
      await converge<V1Service, ServiceWrite>({
        current: svc,
        plan: (cur) => {
          if (cur === fresh && !sameList(ingressIps(cur), basis)) {
            superseded = true;
            return undefined;
          }
          if (isDeleting(cur) || !classifyService(cur, this.options).owned) return undefined;
          if (!hasOurFinalizer(cur))
            return { kind: 'finalizers', finalizers: [...finalizersOf(cur), LB_FINALIZER] };
          const status = ownedStatus(cur, alloc, this.now());
          return status === undefined ? undefined : { kind: 'status', status };
        },
        write: (cur, w) => this.writer.write(cur, w, signal),
        read: async () => (fresh = await this.writer.read(namespace, name, signal)),
        conflicts: this.timing.conflictRetries,
        backoffMs: this.timing.conflictBackoffMs,
        signal,
        seen: this.seen(this.newestServices, key, svc),
        conflicted: () => this.metrics.writeError('service', 'Conflict'),
      });
      this.succeeded(`svc:${key}`);
    } catch (e) {
      this.failed('service', `svc:${key}`, rvOf(svc), e, signal);
      return;
    }
    if (superseded) {
      this.log.info({ service: key }, 'status changed under us; deciding again from what it says');
      this.allocator.forget(key);
      this.requestPass();
    }
  }

  private startCleanup(
    key: string,
    svc: V1Service,
    inOurPools: (ip: string) => boolean,
    signal: AbortSignal,
  ): void {
    if (this.cleanups.has(key) || this.waiting(`svc:${key}`, rvOf(svc))) return;
    const known = this.held.get(key) ?? [];
    const ownership = classifyService(svc, this.options);
    const why =
      isDeleting(svc) || ownership.owned
        ? 'the Service is being deleted'
        : `the Service is no longer xlb's: ${ownership.message}`;
    this.cleanups.start(key, signal, async (taskSignal) => {
      try {
        const outcome = await releaseService(
          svc,
          {
            writer: this.writer,
            port: this.o.cleanup,
            options: this.options,
            inOurPools,
            known,
            conflicts: this.timing.conflictRetries,
            backoffMs: this.timing.conflictBackoffMs,
            conflicted: () => this.metrics.writeError('service', 'Conflict'),
            now: this.now,
            seen: this.seen(this.newestServices, key, svc),
          },
          taskSignal,
        );
        this.succeeded(`svc:${key}`);
        if (outcome.result === 'done') {
          this.held.delete(key);
          this.log.info(
            { service: key, addresses: outcome.released },
            `cleaned up: ${why}; finalizer removed`,
          );
          if (outcome.released.length > 0)
            this.recorder.record(this.subject(svc), {
              type: 'Normal',
              reason: 'IPReleased',
              action: 'Release',
              note: `Released IP ${outcome.released.join(', ')}: ${why}`,
            });
        }
      } catch (e) {
        this.failed('service', `svc:${key}`, rvOf(svc), e, taskSignal);
      } finally {
        this.requestPass();
      }
    });
  }

  private async syncPool(status: PoolStatus, pool: PoolObject, signal: AbortSignal): Promise<void> {
    const name = status.name;
    const generation = pool.metadata?.generation;
    let superseded = false;
    try {
      await converge<PoolObject, NonNullable<ReturnType<typeof poolStatusWrite>>>({
        current: pool,
        plan: (cur) => {
          // A spec edited since the pass read it: the next pass decides from the new one.
          if (cur.metadata?.generation !== generation) {
            superseded = true;
            return undefined;
          }
          return poolStatusWrite(cur, status, this.now());
        },
        write: (cur, w) => this.pools.write(cur, w, signal),
        read: () => this.pools.read(name, signal),
        conflicts: this.timing.conflictRetries,
        backoffMs: this.timing.conflictBackoffMs,
        signal,
        seen: this.seen(this.newestPools, name, pool),
        conflicted: () => this.metrics.writeError('ippool', 'Conflict'),
      });
      this.succeeded(`pool:${name}`);
    } catch (e) {
      this.failed('ippool', `pool:${name}`, rvOf(pool), e, signal);
      return;
    }
    if (superseded) this.requestPass();
  }
}
