// Waiting for the cluster to settle, in a way Ctrl-C can cut short: every
// wait of the demo checks its abort signal, so an interrupted demo goes
// straight to its cleanup.
import { delay } from '../system/delay.js';

/** How long the demo waits for the cluster to settle before it reports what it saw. */
export const SETTLE_MS = 20_000;

export interface Settled<T> {
  /** The last value read. */
  value: T;
  /** Whether it met the condition before the timeout. */
  ok: boolean;
  /** Milliseconds from the start of the wait to the read that met it (or to the timeout). */
  ms: number;
}

/**
 * Reads `read` every `intervalMs` until `done(value)` or `timeoutMs`; never
 * throws for a timeout (the caller reports what it saw). A read that throws
 * counts as not done, and its error is kept as the value's explanation.
 */
export async function settle<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  options: { timeoutMs: number; intervalMs?: number; signal: AbortSignal; start?: number },
): Promise<Settled<T | undefined> & { error?: string }> {
  const start = options.start ?? performance.now();
  let value: T | undefined;
  let error: string | undefined;
  for (;;) {
    options.signal.throwIfAborted();
    try {
      value = await read();
      error = undefined;
      if (done(value)) return { value, ok: true, ms: performance.now() - start };
    } catch (e) {
      error = (e as Error).message;
    }
    if (performance.now() - start > options.timeoutMs)
      return { value, ok: false, ms: performance.now() - start, ...(error ? { error } : {}) };
    await delay(options.intervalMs ?? 50, options.signal);
  }
}
