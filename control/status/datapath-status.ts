// What the pinned datapath holds, per service: its frontends, settings,
// Maglev table size, backends with their state, and the counters. Read from
// the maps alone, so it works with no agent running.
import type { PinnedDatapath } from '../explain/pinned.js';
import type { LbCounters } from '../datapath/stats.js';

export interface CounterStatus {
  packets: number;
  bytes: number;
  newFlows: number;
}

export interface BackendStatus {
  id: number;
  address: string;
  port: number;
  nodeAddress: string;
  state: 'active' | 'terminating';
  local: boolean;
  counters: CounterStatus;
}

export interface ServiceStatus {
  /** The datapath's service (unit) id. */
  id: number;
  /** VIP:port/PROTO */
  frontends: string[];
  /** Enforced loadBalancerSourceRanges; undefined when not enforced. */
  sourceRanges?: string[];
  affinityTimeoutSeconds?: number;
  /** The Maglev table's size M; undefined when the service has no table. */
  tableSize?: number;
  backends: BackendStatus[];
  counters: CounterStatus;
}

export interface DatapathStatus {
  pinDir: string;
  hashSeed: number;
  vips: Array<{ vip: string; frontends: number }>;
  services: ServiceStatus[];
  /** Live backends no service claims (left by an older agent, or the id records are unreadable). */
  otherBackends: BackendStatus[];
  /** Packets the datapath dropped, by reason (only reasons with drops). */
  drops: Array<{ reason: string; packets: number }>;
}

const counters = (c: LbCounters): CounterStatus => ({
  packets: Number(c.packets),
  bytes: Number(c.bytes),
  newFlows: Number(c.newFlows),
});

export const frontendText = (vip: string, port: number, proto: string): string =>
  `${vip.includes(':') ? `[${vip}]` : vip}:${port}/${proto}`;

export function readDatapathStatus(dp: PinnedDatapath): DatapathStatus {
  const m = dp.maps;
  const services = new Map<number, ServiceStatus>();
  for (const { frontend, service } of m.frontendEntries()) {
    let s = services.get(service.id);
    if (s === undefined) {
      s = {
        id: service.id,
        frontends: [],
        ...(service.affinityTimeoutSeconds !== undefined
          ? { affinityTimeoutSeconds: service.affinityTimeoutSeconds }
          : {}),
        ...(service.sourceRanges ? { sourceRanges: [] } : {}),
        backends: [],
        counters: counters(m.serviceCounters(service.id)),
      };
      const header = m.maglevTableHeader(service.id);
      if (header !== undefined) s.tableSize = header.size;
      services.set(service.id, s);
    }
    s.frontends.push(frontendText(frontend.vip, frontend.port, frontend.proto));
  }
  for (const r of m.sourceRangeEntries()) services.get(r.serviceId)?.sourceRanges?.push(r.cidr);

  // A backend's service: its id record's parent; else a table that names it.
  const inTable = new Map<number, number>();
  for (const s of services.values()) {
    if (s.tableSize === undefined) continue;
    for (const id of m.maglevTableWords(s.id) ?? []) inTable.set(id, s.id);
  }
  const otherBackends: BackendStatus[] = [];
  for (const { id, backend } of m.backendEntries()) {
    const b: BackendStatus = { id, ...backend, counters: counters(m.backendCounters(id)) };
    const owner = services.get(dp.serviceOfBackend(id)) ?? services.get(inTable.get(id) ?? 0);
    (owner?.backends ?? otherBackends).push(b);
  }

  const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;
  const list = [...services.values()].sort(byId);
  for (const s of list) {
    s.frontends.sort();
    s.sourceRanges?.sort();
    s.backends.sort(byId);
  }
  return {
    pinDir: dp.pinDir,
    hashSeed: dp.hashSeed,
    vips: [...m.vipEntries()].sort((a, b) => a.vip.localeCompare(b.vip)),
    services: list,
    otherBackends: otherBackends.sort(byId),
    drops: m
      .drops()
      .filter((d) => d.packets > 0n)
      .map((d) => ({ reason: d.name, packets: Number(d.packets) })),
  };
}
