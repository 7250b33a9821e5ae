// Timer arithmetic of a BGP session, pure: hold time negotiation (RFC 4271
// section 4.2 and 10), keepalive interval (a configured one capped by the
// negotiated hold time), jitter, and the exponential
// back-off between connection attempts after failures (the IdleHoldTimer of
// section 8.1.1's DampPeerOscillations).

export interface BackoffSettings {
  /** Delay after the first failure. */
  initialMs: number;
  /** Cap; the delay never exceeds it, jitter included. */
  maxMs: number;
  /** Growth per consecutive failure. */
  multiplier: number;
  /** Fraction taken off at random, 0..1 (RFC 4271 section 10 suggests 0.25). */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = {
  initialMs: 1_000,
  maxMs: 120_000,
  multiplier: 2,
  jitter: 0.25,
};

/** Applies jitter: ms scaled by a random factor in (1 - jitter, 1]. */
export function jittered(ms: number, jitter: number, random: () => number): number {
  return Math.round(ms * (1 - jitter * random()));
}

/** The delay before the next attempt after `failures` consecutive failures (>= 1). */
export function backoffDelay(failures: number, s: BackoffSettings, random: () => number): number {
  const base = Math.min(s.maxMs, s.initialMs * s.multiplier ** Math.max(0, failures - 1));
  return jittered(base, s.jitter, random);
}

/**
 * The hold time both sides use: the smaller of the two offers (seconds). 0
 * means neither keepalives nor a hold timer; otherwise it is at least 3,
 * because both offers were checked to be 0 or at least 3.
 */
export function negotiateHoldTime(ours: number, theirs: number): number {
  return Math.min(ours, theirs);
}

/**
 * Keepalive interval (ms) for a negotiated hold time: a third of it, or the
 * configured interval when that is shorter. The hold time wins because the
 * peer agreed to it: keepalives sparser than a third of it risk its hold
 * timer. 0 only when the hold time is 0 (no keepalives at all); otherwise at
 * least a second, since a hold time is 0 or at least 3 s.
 */
export function keepaliveMs(holdTimeSeconds: number, configuredSeconds?: number): number {
  if (holdTimeSeconds === 0) return 0;
  const third = Math.floor((holdTimeSeconds * 1000) / 3);
  return configuredSeconds === undefined || configuredSeconds <= 0
    ? third
    : Math.min(third, configuredSeconds * 1000);
}
