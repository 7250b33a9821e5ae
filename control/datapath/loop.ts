// Runs the reconciler when the desired state changes and, while a pass left
// work that may succeed later (a map error, ids in quarantine), again after
// an exponential backoff that resets once a pass succeeds.
import type { Unit } from '../model/types.js';
import { logger, type Logger } from '../observe/log.js';
import type { ReconcileResult } from './reconciler.js';

/** setTimeout and clearTimeout, injectable so tests need not wait. */
export interface LoopTimer {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/**
 * A delay of 0 runs on the next turn of the event loop (setImmediate):
 * setTimeout would wait at least a millisecond, all of it change-to-map
 * latency; either way a burst of updates in one turn makes one pass.
 */
export const realTimer: LoopTimer = {
  set: (fn, ms) => (ms <= 0 ? { immediate: setImmediate(fn) } : setTimeout(fn, ms)),
  clear: (handle) => {
    if (typeof handle === 'object' && handle !== null && 'immediate' in handle)
      clearImmediate(handle.immediate as ReturnType<typeof setImmediate>);
    else clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

export interface ReconcileLoopOptions {
  /** First retry delay; doubles per failed pass. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  timer?: LoopTimer;
  /** Called after every pass (status, readiness). */
  onResult?: (result: ReconcileResult) => void;
  log?: Logger;
}

export class ReconcileLoop {
  private desired: readonly Unit[] | undefined;
  private handle: unknown;
  private backoffMs: number;
  private stopped = false;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly timer: LoopTimer;
  private readonly log: Logger;
  /** The delay of the retry now scheduled, if one is. */
  retryInMs: number | undefined;
  lastResult: ReconcileResult | undefined;

  constructor(
    private readonly reconciler: { reconcile(units: readonly Unit[]): ReconcileResult },
    private readonly options: ReconcileLoopOptions = {},
  ) {
    this.initialMs = options.initialBackoffMs ?? 100;
    this.maxMs = options.maxBackoffMs ?? 30_000;
    this.backoffMs = this.initialMs;
    this.timer = options.timer ?? realTimer;
    this.log = options.log ?? logger('datapath');
  }

  /** The desired state changed: reconcile on the next turn (bursts of updates make one pass). */
  update(units: readonly Unit[]): void {
    this.desired = units;
    this.schedule(0);
    this.retryInMs = undefined;
  }

  /** Reconciles now, synchronously (e.g. before activating an upgraded datapath). */
  runNow(): ReconcileResult | undefined {
    if (this.handle !== undefined) {
      this.timer.clear(this.handle);
      this.handle = undefined;
    }
    return this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.timer.clear(this.handle);
    this.handle = undefined;
    this.retryInMs = undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.handle !== undefined) this.timer.clear(this.handle);
    this.handle = this.timer.set(() => {
      this.handle = undefined;
      this.run();
    }, ms);
  }

  private run(): ReconcileResult | undefined {
    if (this.stopped || this.desired === undefined) return undefined;
    this.retryInMs = undefined;
    let result: ReconcileResult | undefined;
    try {
      result = this.reconciler.reconcile(this.desired);
    } catch (e) {
      // A bug, not a map error (those are in the result): keep the agent up
      // and try again later, loudly.
      this.log.error({ err: e }, 'datapath reconcile pass failed');
    }
    if (result !== undefined) {
      this.lastResult = result;
      this.options.onResult?.(result);
    }
    if (result !== undefined && !result.retry) {
      this.backoffMs = this.initialMs;
      return result;
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxMs);
    this.retryInMs = delay;
    this.schedule(delay);
    return result;
  }
}
