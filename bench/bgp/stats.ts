// Latency samples as benchmark figures: p50, p99 and max, with the target
// judged on the worst of them (at 20 to 50 samples p99 is nearly the max).
import type { Figure, Target } from '../results.js';

/** Nearest-rank percentile of samples (p in 0..100); throws on no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

/** Three figures for one latency: p50, p99 and max; the max carries the target, if any. */
export function latencyFigures(
  what: string,
  samples: readonly number[],
  target?: Target,
): Figure[] {
  return [
    {
      name: `${what} p50 (n=${samples.length})`,
      value: round(percentile(samples, 50)),
      unit: 'ms',
    },
    { name: `${what} p99`, value: round(percentile(samples, 99)), unit: 'ms' },
    {
      name: `${what} max`,
      value: round(Math.max(...samples)),
      unit: 'ms',
      ...(target === undefined ? {} : { target }),
    },
  ];
}
