// Kubernetes Events about the objects xlb manages (events.k8s.io/v1, which
// `kubectl describe` lists under Events). Best effort, as Kubernetes' own
// recorders are: a bounded queue written in order by one worker, a few
// retries, then the event is dropped and counted. An event identical to one
// written recently (same object, type, reason, action and note) is not
// written again: the first one's series count and last-seen time go up.
import { EventsV1Api, type EventsV1Event, type KubeConfig } from '@kubernetes/client-node';

import type { Logger } from '../observe/log.js';
import { delay } from '../system/delay.js';
import { callOptions, classifyFailure, MERGE_PATCH, type CallFailure } from './api-call.js';

export interface EventSubject {
  apiVersion: string;
  kind: string;
  /** Absent for cluster-scoped objects (their events go to the default namespace). */
  namespace?: string;
  name: string;
  uid?: string;
}

export interface EventInfo {
  type: 'Normal' | 'Warning';
  /** CamelCase, what `kubectl describe` shows as Reason. */
  reason: string;
  /** What xlb did or tried (events.k8s.io/v1 requires one), CamelCase. */
  action: string;
  note: string;
}

export interface EventRecorderOptions {
  kubeConfig: KubeConfig;
  /** events.k8s.io reportingController, e.g. xlb.dev/controller. */
  controller: string;
  /** reportingInstance: which process (pod or node name). */
  instance: string;
  log: Logger;
  timeoutMs?: number;
  /** An identical event within this window updates the first one's series; default 10 minutes. */
  seriesWindowMs?: number;
  /** Events waiting to be written beyond this are dropped; default 1000. */
  maxQueued?: number;
  /** Attempts per event; default 3. */
  attempts?: number;
  retryBackoffMs?: number;
  /** Longest pause between attempts while the API server is unreachable; default 30 s. */
  maxBackoffMs?: number;
  /** Every write that failed (for metrics). */
  onFailure?: (failure: CallFailure) => void;
  /** Every event dropped, with why (for metrics). */
  onDropped?: (why: 'queueFull' | 'failed') => void;
  now?: () => Date;
}

interface Pending {
  subject: EventSubject;
  info: EventInfo;
  at: Date;
}

interface Written {
  namespace: string;
  name: string;
  count: number;
  lastSeen: number;
}

/** events.k8s.io caps note at 1 kB. */
const MAX_NOTE = 1024;

/** metav1.MicroTime: RFC 3339 with six fractional digits, which the API server requires. */
export function microTime(t: Date): string {
  return t.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function truncate(note: string): string {
  if (note.length <= MAX_NOTE) return note;
  return `${note.slice(0, MAX_NOTE - 12)} [truncated]`;
}

export class EventRecorder {
  private readonly api: EventsV1Api;
  private readonly queue: Pending[] = [];
  private readonly written = new Map<string, Written>();
  private abort = new AbortController();
  private running: Promise<void> | undefined;
  private sequence = 0n;
  private readonly timeoutMs: number;
  private readonly windowMs: number;
  private readonly maxQueued: number;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly now: () => Date;

  constructor(private readonly o: EventRecorderOptions) {
    this.api = o.kubeConfig.makeApiClient(EventsV1Api);
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.windowMs = o.seriesWindowMs ?? 10 * 60_000;
    this.maxQueued = o.maxQueued ?? 1000;
    this.attempts = o.attempts ?? 3;
    this.backoffMs = o.retryBackoffMs ?? 1000;
    this.maxBackoffMs = o.maxBackoffMs ?? 30_000;
    this.now = o.now ?? (() => new Date());
  }

  record(subject: EventSubject, info: EventInfo): void {
    if (this.abort.signal.aborted) return;
    if (this.queue.length >= this.maxQueued) {
      this.o.onDropped?.('queueFull');
      this.o.log.debug({ reason: info.reason, object: subject.name }, 'event queue full; dropped');
      return;
    }
    this.queue.push({ subject, info: { ...info, note: truncate(info.note) }, at: this.now() });
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves once every queued event is written or dropped. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /** Drops what is queued and cancels what is being written; later record() calls start afresh. */
  async stop(): Promise<void> {
    this.abort.abort(new Error('the event recorder stopped'));
    this.queue.length = 0;
    await this.idle();
    this.abort = new AbortController();
  }

  private async drain(): Promise<void> {
    const signal = this.abort.signal;
    for (let next = this.queue.shift(); next !== undefined; next = this.queue.shift()) {
      if (signal.aborted) return;
      await this.writeWithRetries(next, signal);
    }
  }

  private async writeWithRetries(p: Pending, signal: AbortSignal): Promise<void> {
    // An unreachable API server costs no attempt: the event waits (the queue
    // is bounded) and is written once it answers again.
    for (let attempt = 1, waits = 0; ;) {
      let pause: number;
      try {
        await this.write(p, signal);
        return;
      } catch (e) {
        const failure = classifyFailure(e, signal);
        if (failure.kind === 'aborted') return;
        this.o.onFailure?.(failure);
        if (failure.kind === 'unreachable') {
          pause = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** waits++);
        } else if (attempt >= this.attempts) {
          this.o.onDropped?.('failed');
          this.o.log.warn(
            { reason: p.info.reason, object: p.subject.name, error: failure.message },
            'could not write an event; dropped',
          );
          return;
        } else {
          pause = this.backoffMs * 2 ** (attempt++ - 1);
        }
      }
      try {
        await delay(pause, signal);
      } catch {
        return;
      }
    }
  }

  private async write(p: Pending, signal: AbortSignal): Promise<void> {
    const { subject, info, at } = p;
    const namespace = subject.namespace ?? 'default';
    const key = [
      subject.kind,
      namespace,
      subject.name,
      subject.uid ?? '',
      info.type,
      info.reason,
      info.action,
      info.note,
    ].join('\n');
    this.forgetOld(at.getTime());
    const earlier = this.written.get(key);
    if (earlier !== undefined) {
      const count = earlier.count + 1;
      try {
        await this.api.patchNamespacedEvent(
          {
            namespace: earlier.namespace,
            name: earlier.name,
            body: { series: { count, lastObservedTime: microTime(at) } },
          },
          callOptions({ signal, timeoutMs: this.timeoutMs, contentType: MERGE_PATCH }),
        );
        // Re-inserted, so the map stays ordered by last sighting (see forgetOld).
        this.written.delete(key);
        this.written.set(key, { ...earlier, count, lastSeen: at.getTime() });
        return;
      } catch (e) {
        // The event expired (the API server keeps events for an hour): start a new one.
        if (classifyFailure(e, signal).kind !== 'gone') throw e;
        this.written.delete(key);
      }
    }
    // client-go's naming: the object's name and a unique hexadecimal suffix.
    const name = `${subject.name}.${(BigInt(at.getTime()) * 1_000_000n + this.sequence++).toString(16)}`;
    const body: EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(at) as unknown as Date,
      reportingController: this.o.controller,
      reportingInstance: this.o.instance,
      action: info.action,
      reason: info.reason,
      type: info.type,
      note: info.note,
      regarding: {
        apiVersion: subject.apiVersion,
        kind: subject.kind,
        name: subject.name,
        ...(subject.namespace !== undefined ? { namespace: subject.namespace } : {}),
        ...(subject.uid !== undefined ? { uid: subject.uid } : {}),
      },
    };
    try {
      await this.api.createNamespacedEvent(
        { namespace, body },
        callOptions({ signal, timeoutMs: this.timeoutMs }),
      );
    } catch (e) {
      // A create that timed out may have landed: its retry finds it there.
      if (classifyFailure(e, signal).kind !== 'conflict') throw e;
    }
    this.written.set(key, { namespace, name, count: 1, lastSeen: at.getTime() });
  }

  private forgetOld(now: number): void {
    for (const [k, w] of this.written) {
      if (now - w.lastSeen <= this.windowMs) return;
      this.written.delete(k);
    }
  }
}
