// Exponential back-off between attempts to reach the API server, and a wait
// that stop() can cut short without leaving a timer behind.

export interface BackoffOptions {
  /** First delay; default 100 ms. */
  initialMs?: number;
  /** Ceiling; default 30 s. */
  maxMs?: number;
  /** Growth per failure; default 2. */
  factor?: number;
  /**
   * Each delay is stretched by up to this fraction at random, so a thousand
   * agents that lost the API server together do not return in one burst;
   * default 0.2 (0 in tests that count delays).
   */
  jitter?: number;
}

export class BackoffError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackoffError';
  }
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly jitter: number;
  private current: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.jitter = options.jitter ?? 0.2;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs))
      throw new BackoffError(
        `back-off needs 0 < initialMs <= maxMs (got ${this.initialMs} and ${this.maxMs})`,
      );
    if (!(this.factor >= 1))
      throw new BackoffError(`back-off factor must be >= 1 (got ${this.factor})`);
    if (!(this.jitter >= 0 && this.jitter <= 1))
      throw new BackoffError(`back-off jitter must be within [0, 1] (got ${this.jitter})`);
    this.current = this.initialMs;
  }

  /** The delay before the next attempt; each call makes the following one longer. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.maxMs, this.current * this.factor);
    return Math.min(this.maxMs, Math.round(base * (1 + this.jitter * Math.random())));
  }

  /** After a success: the next failure waits the initial delay again. */
  reset(): void {
    this.current = this.initialMs;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
