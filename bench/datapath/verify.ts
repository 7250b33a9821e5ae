// Proof that a measurement measured the path it is named after: the
// datapath's own counters, read before and after, must show every packet in
// the intended outcome slot and exactly the intended events. A benchmark that
// silently measures another path (e.g. a repeat loop over a packet the
// program rewrote on the first repetition) fails instead of reporting.
import type { DropName, EventName, OutcomeName } from '../../control/datapath/abi.js';
import type { Datapath } from '../../control/datapath/load.js';
import type { SlotRow } from '../../control/datapath/stats.js';

export interface CounterSnapshot {
  outcomes: Map<OutcomeName, bigint>;
  drops: Map<DropName, bigint>;
  events: Map<EventName, bigint>;
}

const packets = <N extends string>(rows: SlotRow<N>[]): Map<N, bigint> =>
  new Map(rows.map((r) => [r.name, r.packets]));

/** Packet counts of every outcome, drop and event slot, summed over CPUs. */
export function snapshot(dp: Datapath): CounterSnapshot {
  return {
    outcomes: packets(dp.maps.outcomes()),
    drops: packets(dp.maps.drops()),
    events: packets(dp.maps.events()),
  };
}

function minus<N extends string>(after: Map<N, bigint>, before: Map<N, bigint>): Map<N, bigint> {
  return new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0n)]));
}

export function delta(before: CounterSnapshot, after: CounterSnapshot): CounterSnapshot {
  return {
    outcomes: minus(after.outcomes, before.outcomes),
    drops: minus(after.drops, before.drops),
    events: minus(after.events, before.events),
  };
}

/** Packets the program finished (every packet ends in one outcome or drop slot). */
export function finished(d: CounterSnapshot): number {
  let n = 0n;
  for (const v of d.outcomes.values()) n += v;
  for (const v of d.drops.values()) n += v;
  return Number(n);
}

/** The non-zero counters of a delta, e.g. "LOCAL=1 PASS_NOT_VIP=9 | events CONNTRACK_HIT=1". */
export function describe(d: CounterSnapshot): string {
  const list = (m: Map<string, bigint>, prefix = ''): string[] =>
    [...m].filter(([, v]) => v !== 0n).map(([k, v]) => `${prefix}${k}=${v}`);
  const fates = [...list(d.outcomes), ...list(d.drops, 'drop ')];
  const events = list(d.events);
  return `${fates.join(' ') || 'no packets'}${events.length ? ` | events ${events.join(' ')}` : ''}`;
}

export interface PathExpectation {
  /** The outcome slot every packet must end in. */
  outcome: OutcomeName;
  /** How often each event counts per packet; events not named must not count at all. */
  events?: Partial<Record<EventName, number>>;
  /**
   * Events of which each packet counts exactly one, in any mix (e.g. a flow
   * cache hit or, for a flow whose cache slot another flow took, a
   * connection-table hit).
   */
  oneOf?: readonly EventName[];
}

export class WrongPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WrongPathError';
  }
}

/** Throws WrongPathError unless all `n` packets took the expected path and nothing else ran. */
export function checkPath(
  what: string,
  d: CounterSnapshot,
  n: number,
  expect: PathExpectation,
): void {
  const problems: string[] = [];
  if (finished(d) !== n) problems.push(`${finished(d)} packets counted, not ${n}`);
  const hits = d.outcomes.get(expect.outcome) ?? 0n;
  if (hits !== BigInt(n)) problems.push(`${hits} of ${n} packets in ${expect.outcome}`);
  let oneOf = 0n;
  for (const [name, count] of d.events) {
    if (expect.oneOf?.includes(name)) {
      oneOf += count;
      continue;
    }
    const want = BigInt(n * (expect.events?.[name] ?? 0));
    if (count !== want) problems.push(`event ${name} counted ${count} times, expected ${want}`);
  }
  if (expect.oneOf && oneOf !== BigInt(n)) {
    problems.push(`events ${expect.oneOf.join(' + ')} counted ${oneOf} times, expected ${n}`);
  }
  if (problems.length > 0) {
    throw new WrongPathError(
      `${what}: not every packet took the intended path (${problems.join('; ')}); ` +
        `counters moved: ${describe(d)}`,
    );
  }
}
