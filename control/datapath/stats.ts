// Reads the datapath's per-CPU counters (the xlb_stats map) into named rows.
import type { BpfMap } from '../../native/index.js';
import { XlbCounter, XlbStat, type XlbStatName } from './abi.js';

export interface CounterValue {
  packets: bigint;
  bytes: bigint;
}

export interface StatRow extends CounterValue {
  name: XlbStatName;
  /** Index = CPU number. */
  perCpu: CounterValue[];
}

export const statNames = (Object.keys(XlbStat.values) as Array<keyof typeof XlbStat.values>).filter(
  (n): n is XlbStatName => n !== '_COUNT',
);

export function readStats(map: BpfMap): StatRow[] {
  return statNames.map((name) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(XlbStat.values[name]);
    const perCpu = (map.lookupPerCpu(key) ?? []).map((b) => XlbCounter.decode(b));
    return {
      name,
      perCpu,
      packets: perCpu.reduce((s, c) => s + c.packets, 0n),
      bytes: perCpu.reduce((s, c) => s + c.bytes, 0n),
    };
  });
}
