// Reads the datapath's per-CPU counters into named rows.
import type { BpfMap } from '../../native/index.js';
import { XlbCounter, XlbLbCounters } from './abi.js';
import { key32, type EnumMirror } from './codec.js';

export interface CounterValue {
  packets: bigint;
  bytes: bigint;
}

export interface SlotRow<N extends string> extends CounterValue {
  name: N;
  /** Index = CPU number. */
  perCpu: CounterValue[];
}

/** Every slot of a counter array indexed by a C enum (xlb_drops, xlb_outcomes, xlb_events). */
export function readSlots<N extends string>(
  map: BpfMap,
  mirror: EnumMirror<N | '_COUNT'>,
): SlotRow<N>[] {
  const names = (Object.keys(mirror.values) as Array<N | '_COUNT'>).filter(
    (n): n is N => n !== '_COUNT',
  );
  return names.map((name) => {
    const perCpu = (map.lookupPerCpu(key32(mirror.values[name])) ?? []).map((b) =>
      XlbCounter.decode(b),
    );
    return {
      name,
      perCpu,
      packets: perCpu.reduce((s, c) => s + c.packets, 0n),
      bytes: perCpu.reduce((s, c) => s + c.bytes, 0n),
    };
  });
}

export interface LbCounters extends CounterValue {
  newFlows: bigint;
}

/** A service's or backend's counters, summed over CPUs. */
export function readLbCounters(map: BpfMap, id: number): LbCounters {
  const sum: LbCounters = { packets: 0n, bytes: 0n, newFlows: 0n };
  for (const raw of map.lookupPerCpu(key32(id)) ?? []) {
    const c = XlbLbCounters.decode(raw);
    sum.packets += c.packets;
    sum.bytes += c.bytes;
    sum.newFlows += c.new_flows;
  }
  return sum;
}
