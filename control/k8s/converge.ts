// Writes one object until it is what a plan wants, with optimistic
// concurrency: every write carries the resourceVersion it was computed from;
// a 409 means someone else wrote first, so the object is read again and the
// plan computed again from what is there now, a bounded number of times.
import { delay } from '../system/delay.js';
import { classifyFailure } from './api-call.js';

export interface ConvergeOptions<T, W> {
  /** The object as last seen (the store's copy, or an earlier write's answer). */
  current: T;
  /** The next write the object needs, or undefined when it needs none. */
  plan: (current: T) => W | undefined;
  /** Writes `w` conditioned on current's resourceVersion; resolves with the object written. */
  write: (current: T, w: W) => Promise<T>;
  /** Reads the object from the API server; undefined when it is gone. */
  read: () => Promise<T | undefined>;
  /** Conflicts tolerated before giving up (the caller retries later). */
  conflicts: number;
  /** First pause after a conflict; doubles per conflict. */
  backoffMs: number;
  signal: AbortSignal;
  /** Told of every successful write and every fresh read (so callers can remember the newest copy). */
  seen?: (object: T) => void;
  /** Told of every 409 (for metrics), retried or not. */
  conflicted?: () => void;
}

export class ConflictRetriesExhausted extends Error {
  constructor(attempts: number) {
    super(
      `the object kept changing under us: ${attempts} writes in a row were refused with 409 Conflict`,
    );
    this.name = 'ConflictRetriesExhausted';
  }
}

/**
 * Applies plan's writes one after another (e.g. finalizer, then status) until
 * the plan is empty. Resolves with the final object, or undefined when it was
 * deleted. Throws the first failure that is not a conflict, or
 * ConflictRetriesExhausted.
 */
export async function converge<T, W>(o: ConvergeOptions<T, W>): Promise<T | undefined> {
  let current = o.current;
  let conflicts = 0;
  // Every successful write changes what the plan sees, so it ends; the bound
  // only guards against a plan that never does.
  for (let writes = 0; writes < 16;) {
    const w = o.plan(current);
    if (w === undefined) return current;
    o.signal.throwIfAborted();
    try {
      current = await o.write(current, w);
      writes++;
      o.seen?.(current);
    } catch (e) {
      if (classifyFailure(e, o.signal).kind !== 'conflict') throw e;
      o.conflicted?.();
      if (++conflicts > o.conflicts) throw new ConflictRetriesExhausted(conflicts);
      await delay(o.backoffMs * 2 ** (conflicts - 1), o.signal);
      const fresh = await o.read();
      if (fresh === undefined) return undefined;
      current = fresh;
      o.seen?.(current);
    }
  }
  throw new Error('a write plan did not settle after 16 writes; this is a bug in xlb');
}
