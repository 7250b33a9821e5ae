// Leader election on a coordination.k8s.io/v1 Lease, with client-go's
// semantics: one agent at a time allocates addresses and writes status.
//
// - Every write is conditional on the resourceVersion read (a 409 means
//   someone else wrote: the next attempt reads again), so two candidates can
//   never both think they took the lease.
// - Another holder's lease expires when its record has not changed for its
//   lease duration *as measured by our own monotonic clock* from when we saw
//   it change; the holder's renewTime is never compared with our clock, so
//   clock skew between nodes cannot make two leaders.
// - The leader renews every retryPeriod; if no renewal succeeded for
//   renewDeadline (< leaseDuration) it steps down, before anyone else may
//   consider the lease expired. It then campaigns again like any candidate.
import type { KubeConfig } from '@kubernetes/client-node';

import { logger, type Logger } from '../observe/log.js';

import { pause } from './backoff.js';
import { JsonClient, KubeApiError } from './json-client.js';
import {
  microTime,
  readLeaseRecord,
  recordFingerprint,
  withRecord,
  type LeaseObject,
  type LeaseRecord,
} from './lease-record.js';

export interface LeaderCallbacks {
  /** This agent now holds the lease: start the leader-only work. */
  onStartedLeading?(): void | Promise<void>;
  /** This agent no longer holds the lease (or may not): stop that work at once. */
  onStoppedLeading?(): void | Promise<void>;
  /** The lease holder changed (this agent included). */
  onNewLeader?(identity: string): void | Promise<void>;
}

export interface LeaderElectionOptions extends LeaderCallbacks {
  /** Loaded by the caller: in-cluster, or from a kubeconfig file. */
  kubeConfig: KubeConfig;
  /** Where the Lease lives (the release namespace). */
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This agent (pod or node name): unique among the candidates. */
  identity: string;
  /** How long others wait after the last change they saw; default 15 s. Written in whole seconds. */
  leaseDurationMs?: number;
  /** The leader steps down when renewing fails this long; default 10 s. */
  renewDeadlineMs?: number;
  /** Between attempts; default 2 s (candidates add up to 20 % at random). */
  retryPeriodMs?: number;
  /** One request; default renewDeadlineMs. */
  requestTimeoutMs?: number;
  /** Default: logger('leader'). */
  log?: Logger;
}

export interface StopOptions {
  /** Give the lease up, so another agent takes over at once (graceful shutdown). */
  release?: boolean;
}

export class LeaderElectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaderElectionError';
  }
}

/** client-go's: candidates wait retryPeriod times up to (1 + this). */
const JITTER = 0.2;

/** held: ours now; notHeld: someone else's; conflict: a write raced another, read again next time. */
type Attempt = 'held' | 'notHeld' | 'conflict';

function isConflict(err: unknown): boolean {
  return err instanceof KubeApiError && err.kind === 'http' && err.status === 409;
}

function isNotFound(err: unknown): boolean {
  return err instanceof KubeApiError && err.kind === 'http' && err.status === 404;
}

const now = (): number => performance.now();

export class LeaderElector {
  private readonly opts: Required<
    Pick<
      LeaderElectionOptions,
      'leaseDurationMs' | 'renewDeadlineMs' | 'retryPeriodMs' | 'requestTimeoutMs'
    >
  > &
    LeaderElectionOptions;
  private readonly client: JsonClient;
  private readonly log: Logger;
  private readonly collection: string;
  private readonly path: string;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private leading = false;
  /** The lease as last written by us or read, for the next conditional write. */
  private cached: LeaseObject | undefined;
  private observedFingerprint: string | undefined;
  private observedRecord: LeaseRecord | undefined;
  /** Monotonic ms when the record was last seen to change. */
  private observedAt = 0;
  private reportedLeader: string | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  /** Cancels the request in flight when the leader steps down. */
  private inflight: AbortController | undefined;
  private failures = 0;

  constructor(options: LeaderElectionOptions) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    const retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (options.identity === '')
      throw new LeaderElectionError('leader election needs an identity (the pod or node name)');
    if (options.namespace === '' || options.name === '')
      throw new LeaderElectionError('leader election needs the Lease namespace and name');
    if (!(retryPeriodMs > 0))
      throw new LeaderElectionError(`retryPeriod must be positive (got ${retryPeriodMs} ms)`);
    if (!(leaseDurationMs > renewDeadlineMs))
      throw new LeaderElectionError(
        `leaseDuration (${leaseDurationMs} ms) must exceed renewDeadline (${renewDeadlineMs} ms): ` +
          'the leader must step down before others may take over',
      );
    if (!(renewDeadlineMs > retryPeriodMs * (1 + JITTER)))
      throw new LeaderElectionError(
        `renewDeadline (${renewDeadlineMs} ms) must exceed ${1 + JITTER} x retryPeriod ` +
          `(${retryPeriodMs} ms), or one slow attempt makes the leader step down`,
      );
    this.opts = {
      ...options,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
      requestTimeoutMs: options.requestTimeoutMs ?? renewDeadlineMs,
    };
    this.client = new JsonClient(options.kubeConfig);
    this.log = (options.log ?? logger('leader')).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    this.collection = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`;
    this.path = `${this.collection}/${encodeURIComponent(options.name)}`;
  }

  /** Starts campaigning; the callbacks say what happens. */
  start(): void {
    if (this.loop !== undefined) throw new LeaderElectionError('leader election starts once');
    this.log.info('campaigning for leadership');
    this.loop = this.run();
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the Lease ('' for none), undefined before the first read. */
  leader(): string | undefined {
    return this.observedRecord?.holderIdentity;
  }

  /**
   * Stops campaigning and renewing; leaves no timer. With `release`, a leader
   * first gives the lease up. A leader gets onStoppedLeading either way.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopped ??= this.shutdown(options.release === true);
    return this.stopped;
  }

  private async shutdown(release: boolean): Promise<void> {
    this.stopping.abort();
    this.inflight?.abort();
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    await this.loop;
    if (!this.leading) return;
    if (release) await this.release();
    this.leading = false;
    this.log.info(release ? 'stopped leading: lease released' : 'stopped leading: shutting down');
    this.call('onStoppedLeading');
  }

  private async run(): Promise<void> {
    const { retryPeriodMs } = this.opts;
    while (!this.stopping.signal.aborted) {
      await this.attempt();
      if (this.stopping.signal.aborted) break;
      const wait = this.leading ? retryPeriodMs : retryPeriodMs * (1 + JITTER * Math.random());
      await pause(wait, this.stopping.signal);
    }
  }

  private async attempt(): Promise<void> {
    const ac = new AbortController();
    this.inflight = ac;
    // The deadline counts from before the write: others start their clock
    // when they read it, which is no earlier than the server wrote it.
    const startedAt = now();
    let outcome: Attempt;
    try {
      outcome = await this.tryAcquireOrRenew(ac.signal);
    } catch (err) {
      if (ac.signal.aborted) return;
      this.failures++;
      const fields = { err: (err as Error).message, failures: this.failures };
      // A candidate failing is routine while the server is away; a leader
      // failing is the road to stepping down.
      if (this.leading) this.log.warn(fields, 'could not renew the lease');
      else if (this.failures === 1) this.log.warn(fields, 'could not read or write the lease');
      else this.log.debug(fields, 'could not read or write the lease');
      return;
    } finally {
      if (this.inflight === ac) this.inflight = undefined;
    }
    if (ac.signal.aborted) return;
    if (this.failures > 0)
      this.log.info({ failures: this.failures }, 'the lease is reachable again');
    this.failures = 0;
    if (outcome === 'held') {
      this.armRenewDeadline(startedAt);
      if (!this.leading) {
        this.leading = true;
        this.log.info('started leading');
        this.call('onStartedLeading');
      }
    } else if (outcome === 'notHeld' && this.leading) {
      this.stepDown(`the lease is held by '${this.observedRecord?.holderIdentity ?? ''}'`);
    }
  }

  private armRenewDeadline(renewedAt: number): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(
      () => this.stepDown(`no renewal succeeded for ${this.opts.renewDeadlineMs} ms`),
      Math.max(0, renewedAt + this.opts.renewDeadlineMs - now()),
    );
  }

  private stepDown(why: string): void {
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    if (!this.leading) return;
    this.leading = false;
    // A renewal still in flight must not count once we have stopped leading.
    this.inflight?.abort();
    this.log.warn({ why }, 'stepped down');
    this.call('onStoppedLeading');
  }

  private call(name: 'onStartedLeading' | 'onStoppedLeading'): void;
  private call(name: 'onNewLeader', identity: string): void;
  private call(name: keyof LeaderCallbacks, identity?: string): void {
    const report = (err: unknown): void =>
      this.log.error({ err, callback: name }, 'a leader election callback failed');
    try {
      const r =
        name === 'onNewLeader' ? this.opts.onNewLeader?.(identity ?? '') : this.opts[name]?.();
      if (r instanceof Promise) r.catch(report);
    } catch (err) {
      report(err);
    }
  }

  /** Notes the record we read or wrote; restarts the expiry clock when it changed. */
  private observe(lease: LeaseObject): LeaseRecord {
    this.cached = lease;
    const fingerprint = recordFingerprint(lease);
    const rec = readLeaseRecord(lease);
    if (fingerprint !== this.observedFingerprint) {
      this.observedFingerprint = fingerprint;
      this.observedRecord = rec;
      this.observedAt = now();
    }
    if (rec.holderIdentity !== '' && rec.holderIdentity !== this.reportedLeader) {
      this.reportedLeader = rec.holderIdentity;
      this.log.info({ leader: rec.holderIdentity }, 'new leader');
      this.call('onNewLeader', rec.holderIdentity);
    }
    return rec;
  }

  /** The holder's duration when it wrote a sane one, else ours. */
  private durationMs(rec: LeaseRecord): number {
    return rec.leaseDurationSeconds !== undefined
      ? rec.leaseDurationSeconds * 1000
      : this.opts.leaseDurationMs;
  }

  private ourRecord(previous: LeaseRecord): LeaseRecord {
    const stamp = microTime(new Date());
    const ours = previous.holderIdentity === this.opts.identity;
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.opts.leaseDurationMs / 1000)),
      acquireTime: ours ? (previous.acquireTime ?? stamp) : stamp,
      renewTime: stamp,
      leaseTransitions: ours ? previous.leaseTransitions : previous.leaseTransitions + 1,
    };
  }

  private request<T>(
    signal: AbortSignal,
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
  ): Promise<T> {
    return this.client.request<T>({
      method,
      path,
      body,
      signal,
      timeoutMs: this.opts.requestTimeoutMs,
    });
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<Attempt> {
    // A leader renews from the lease it last wrote, without reading first;
    // a 409 sends it down the reading path.
    if (this.leading && this.cached !== undefined) {
      try {
        const cached = readLeaseRecord(this.cached);
        this.observe(
          await this.request<LeaseObject>(
            signal,
            'PUT',
            this.path,
            withRecord(this.cached, this.ourRecord(cached)),
          ),
        );
        return 'held';
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }

    let lease: LeaseObject;
    try {
      lease = await this.request<LeaseObject>(signal, 'GET', this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const fresh: LeaseObject = {
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
      };
      try {
        this.observe(
          await this.request<LeaseObject>(
            signal,
            'POST',
            this.collection,
            withRecord(fresh, { ...this.ourRecord(readLeaseRecord(fresh)), leaseTransitions: 0 }),
          ),
        );
        return 'held';
      } catch (createErr) {
        // Another candidate created it first: read it next time.
        if (isConflict(createErr)) return 'conflict';
        throw createErr;
      }
    }

    const rec = this.observe(lease);
    const held = rec.holderIdentity !== '' && rec.holderIdentity !== this.opts.identity;
    if (held && now() < this.observedAt + this.durationMs(rec)) return 'notHeld';
    if (held)
      this.log.info(
        { holder: rec.holderIdentity, unchangedForMs: Math.round(now() - this.observedAt) },
        'the lease expired: taking it over',
      );
    try {
      this.observe(
        await this.request<LeaseObject>(
          signal,
          'PUT',
          this.path,
          withRecord(lease, this.ourRecord(rec)),
        ),
      );
      return 'held';
    } catch (err) {
      if (isConflict(err)) return 'conflict';
      throw err;
    }
  }

  /** Gives the lease up: no holder, so the next candidate takes it at once. */
  private async release(): Promise<void> {
    const signal = AbortSignal.timeout(this.opts.requestTimeoutMs);
    const released = (lease: LeaseObject): LeaseObject => {
      const rec = readLeaseRecord(lease);
      const stamp = microTime(new Date());
      return withRecord(lease, {
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: stamp,
        renewTime: stamp,
        leaseTransitions: rec.leaseTransitions,
      });
    };
    try {
      if (this.cached !== undefined) {
        try {
          await this.request(signal, 'PUT', this.path, released(this.cached));
          return;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      const lease = await this.request<LeaseObject>(signal, 'GET', this.path);
      if (readLeaseRecord(lease).holderIdentity !== this.opts.identity) return;
      await this.request(signal, 'PUT', this.path, released(lease));
    } catch (err) {
      // Others take over once the lease expires, as after a crash.
      this.log.warn({ err: (err as Error).message }, 'could not release the lease');
    }
  }
}
