// Letting go of a Service: being deleted, or no longer ours (its type or
// class changed). Its addresses leave its status first, so every agent stops
// serving and announcing them; once the cleanup port says this node's
// datapath and BGP let go, the finalizer goes and the Service with it (when
// deleted). Each Service's cleanup runs on its own, outside the controller's
// passes, because waiting for the datapath must not hold other Services up.
import type { V1Service } from '@kubernetes/client-node';

import { classifyService } from '../model/ownership.js';
import type { ModelOptions } from '../model/types.js';
import { converge } from './converge.js';
import {
  addressesToRelease,
  cleanupCause,
  finalizersOf,
  LB_FINALIZER,
  releasedStatus,
} from './service-status.js';
import { serviceRef, type ServiceWrite, type ServiceWriter } from './service-writer.js';

/** What the agent provides: tells when this node no longer serves or announces addresses. */
export interface CleanupPort {
  /**
   * Resolves once this node's datapath no longer serves `addresses` for the
   * Service `serviceKey` (`namespace/name`) and BGP has withdrawn them.
   * Rejects (or never resolves) when `signal` aborts.
   */
  whenCleared(serviceKey: string, addresses: string[], signal: AbortSignal): Promise<void>;
}

export interface ReleaseContext {
  writer: ServiceWriter;
  port: CleanupPort;
  options: ModelOptions;
  /** Whether an address is in one of our pools (for Services that are no longer ours). */
  inOurPools: (ip: string) => boolean;
  /** Addresses the controller knows the Service held, for when its status no longer lists them. */
  known: readonly string[];
  conflicts: number;
  backoffMs: number;
  conflicted?: () => void;
  now: () => Date;
  /** Every object read or written (the controller keeps the newest copy). */
  seen: (svc: V1Service) => void;
}

/**
 * done: the finalizer is gone. superseded: the Service needs no cleanup any
 * more (ours again, or someone else removed the finalizer). gone: deleted.
 */
export interface ReleaseOutcome {
  result: 'done' | 'superseded' | 'gone';
  /** The addresses taken out of status (or known to have been there). */
  released: string[];
}

export async function releaseService(
  svc: V1Service,
  ctx: ReleaseContext,
  signal: AbortSignal,
): Promise<ReleaseOutcome> {
  const { namespace, name } = serviceRef(svc);
  const key = `${namespace}/${name}`;
  const read = () => ctx.writer.read(namespace, name, signal);
  const write = (cur: V1Service, w: ServiceWrite) => ctx.writer.write(cur, w, signal);
  const released = new Set(ctx.known);
  // Both steps write the same way: conditional, re-read on conflict, backing off.
  const shared = {
    write,
    read,
    conflicts: ctx.conflicts,
    backoffMs: ctx.backoffMs,
    signal,
    seen: ctx.seen,
    conflicted: ctx.conflicted,
  };

  const afterRelease = await converge<V1Service, ServiceWrite>({
    current: svc,
    plan: (cur) => {
      const cause = cleanupCause(cur, ctx.options);
      if (cause === 'none') return undefined;
      const owned = classifyService(cur, ctx.options).owned;
      const addresses = addressesToRelease(cur, owned, ctx.inOurPools);
      for (const a of addresses) released.add(a);
      const status = releasedStatus(cur, addresses, cause === 'deleting', ctx.now());
      return status === undefined ? undefined : { kind: 'status', status };
    },
    ...shared,
  });
  if (afterRelease === undefined) return { result: 'gone', released: [...released] };
  if (cleanupCause(afterRelease, ctx.options) === 'none')
    return { result: 'superseded', released: [...released] };

  await ctx.port.whenCleared(key, [...released], signal);
  signal.throwIfAborted();

  let removed = false;
  const final = await converge<V1Service, ServiceWrite>({
    current: afterRelease,
    plan: (cur) => {
      // Checked again on every fresh read: a Service that became ours again
      // while we waited keeps its finalizer.
      if (cleanupCause(cur, ctx.options) === 'none') return undefined;
      removed = true;
      return {
        kind: 'finalizers',
        finalizers: finalizersOf(cur).filter((f) => f !== LB_FINALIZER),
      };
    },
    ...shared,
  });
  const result =
    final === undefined
      ? removed
        ? 'done'
        : 'gone'
      : removed && !finalizersOf(final).includes(LB_FINALIZER)
        ? 'done'
        : 'superseded';
  return { result, released: [...released] };
}

/** The cleanups under way, one per Service, each cancellable. */
export class CleanupTasks {
  private readonly tasks = new Map<string, { abort: AbortController; done: Promise<void> }>();

  has(key: string): boolean {
    return this.tasks.has(key);
  }

  get size(): number {
    return this.tasks.size;
  }

  /** Runs `task` for `key` unless one runs already; `task` must not reject. */
  start(key: string, parent: AbortSignal, task: (signal: AbortSignal) => Promise<void>): void {
    if (this.tasks.has(key) || parent.aborted) return;
    const abort = new AbortController();
    const onParentAbort = (): void => abort.abort(parent.reason);
    parent.addEventListener('abort', onParentAbort, { once: true });
    const done = task(abort.signal).finally(() => {
      parent.removeEventListener('abort', onParentAbort);
      if (this.tasks.get(key)?.abort === abort) this.tasks.delete(key);
    });
    this.tasks.set(key, { abort, done });
  }

  cancel(key: string): void {
    this.tasks.get(key)?.abort.abort(new Error(`cleanup of ${key} cancelled`));
  }

  /** Cancels every cleanup and resolves once all have ended. */
  async cancelAll(): Promise<void> {
    const all = [...this.tasks.values()];
    for (const t of all) t.abort.abort(new Error('the controller stopped'));
    await Promise.allSettled(all.map((t) => t.done));
  }
}
