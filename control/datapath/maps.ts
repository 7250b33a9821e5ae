// Typed writes and reads of the datapath's maps: the only place that knows
// their keys and values. Callers speak addresses, ports and ids.
import { BpfMap, MapFlag } from '../../native/index.js';
import {
  XlbBackend,
  XlbBackendFlag,
  XlbBackendState,
  XlbDrop,
  XlbEvent,
  XlbFlow,
  XlbFlowKey,
  XlbFrontendKey,
  XlbLpmKey,
  XlbOutcome,
  XlbReverseNat,
  XlbService,
  XlbServiceFlag,
  XlbVip,
  XlbVipKey,
  type DropName,
  type EventName,
  type OutcomeName,
} from './abi.js';
import { key32 } from './codec.js';
import { fromDatapathAddress, parseCidr, toDatapathAddress, type Family } from './address.js';
import { readLbCounters, readSlots, type LbCounters, type SlotRow } from './stats.js';
import { vipFilterBit } from './flowcache.js';

export const mapNames = [
  'xlb_vips',
  'xlb_frontends',
  'xlb_maglev',
  'xlb_backends',
  'xlb_conntrack',
  'xlb_reverse',
  'xlb_source_ranges',
  'xlb_nexthops',
  'xlb_vip_filter',
  'xlb_flow_cache',
  'xlb_flow_cache_gen',
  'xlb_service_stats',
  'xlb_backend_stats',
  'xlb_drops',
  'xlb_outcomes',
  'xlb_events',
] as const;
export type MapName = (typeof mapNames)[number];

export type L4Proto = 'TCP' | 'UDP';
const protoNumber: Record<L4Proto, number> = { TCP: 6, UDP: 17 };
const protoName = (n: number): L4Proto | `proto${number}` =>
  n === 6 ? 'TCP' : n === 17 ? 'UDP' : `proto${n}`;

export interface Frontend {
  vip: string;
  port: number;
  proto: L4Proto;
}

export interface ServiceEntry {
  /** Index of the service's Maglev table, counters and source ranges. */
  id: number;
  /** loadBalancerSourceRanges are enforced (see setSourceRanges). */
  sourceRanges?: boolean;
  /** sessionAffinity ClientIP with this timeout. */
  affinityTimeoutSeconds?: number;
}

export interface BackendEntry {
  address: string;
  port: number;
  /** The node running the pod: where remote traffic is tunnelled to. */
  nodeAddress: string;
  state: 'active' | 'terminating';
  local: boolean;
}

export interface FlowEntry {
  client: string;
  clientPort: number;
  vip: string;
  port: number;
  proto: L4Proto | `proto${number}`;
  backendId: number;
  serviceId: number;
  lastSeenNs: bigint;
}

export class DatapathMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatapathMapError';
  }
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DatapathMapError(`${what} ${port} is not a port (1-65535)`);
  }
}

/** The backend is where it was; only its state may differ (a gone one is new). */
function sameBackendPlace(a: Buffer, b: Buffer): boolean {
  const x = XlbBackend.decode(a);
  const y = XlbBackend.decode(b);
  return (
    x.state !== XlbBackendState.values.GONE &&
    x.addr.equals(y.addr) &&
    x.node_addr.equals(y.node_addr) &&
    x.port_be === y.port_be &&
    x.family === y.family &&
    x.flags === y.flags
  );
}

export class DatapathMaps implements Disposable {
  constructor(private readonly maps: Record<MapName, BpfMap>) {}

  map(name: MapName): BpfMap {
    return this.maps[name];
  }

  /**
   * Makes every flow cached on any CPU take the full path once more. Called
   * after each change that could alter a cached verdict; a backend's state
   * needs none (the cache re-reads it per packet), a Maglev table neither
   * (it decides new flows only, which the cache does not hold).
   */
  invalidateFlowCache(): void {
    const slot = key32(0);
    const gen = this.maps.xlb_flow_cache_gen.lookup(slot)?.readUInt32LE(0) ?? 0;
    this.maps.xlb_flow_cache_gen.update(slot, key32((gen + 1) >>> 0));
  }

  /** The flow cache's current generation. */
  flowCacheGeneration(): number {
    return this.maps.xlb_flow_cache_gen.lookup(key32(0))?.readUInt32LE(0) ?? 0;
  }

  /** Sets or clears the filter bit of `vip`, given whether some VIP still needs it. */
  private updateVipFilter(vip: string, set: boolean): void {
    const bit = vipFilterBit(vip);
    const slot = key32(bit >> 6);
    const mask = 1n << BigInt(bit & 63);
    const old = this.maps.xlb_vip_filter.lookup(slot)?.readBigUInt64LE(0) ?? 0n;
    const word = set ? old | mask : old & ~mask;
    if (word === old) return;
    const value = Buffer.alloc(8);
    value.writeBigUInt64LE(word);
    this.maps.xlb_vip_filter.update(slot, value);
  }

  /** Every address in xlb_vips. */
  *vips(): Generator<string> {
    for (const k of this.maps.xlb_vips.keys()) {
      const key = XlbVipKey.decode(k);
      yield fromDatapathAddress(key.addr, key.family as Family);
    }
  }

  setVip(vip: string, frontends: number): void {
    const a = toDatapathAddress(vip);
    // The filter bit first: until it is set the datapath passes the VIP's
    // traffic to the host without looking further.
    this.updateVipFilter(vip, true);
    this.maps.xlb_vips.update(
      XlbVipKey.encode({ addr: a.bytes, family: a.family }),
      XlbVip.encode({ frontends }),
    );
  }

  deleteVip(vip: string): boolean {
    const a = toDatapathAddress(vip);
    const deleted = this.maps.xlb_vips.delete(
      XlbVipKey.encode({ addr: a.bytes, family: a.family }),
    );
    // Another VIP may share the bit: clear it only when none does.
    const bit = vipFilterBit(vip);
    let shared = false;
    for (const other of this.vips()) if (vipFilterBit(other) === bit) shared = true;
    if (!shared) this.updateVipFilter(vip, false);
    this.invalidateFlowCache();
    return deleted;
  }

  private frontendKey(f: Frontend): Buffer {
    checkPort(f.port, 'frontend port');
    const a = toDatapathAddress(f.vip);
    return XlbFrontendKey.encode({
      addr: a.bytes,
      port_be: f.port,
      proto: protoNumber[f.proto],
      family: a.family,
    });
  }

  setFrontend(f: Frontend, s: ServiceEntry): void {
    const flags =
      (s.sourceRanges ? XlbServiceFlag.values.SOURCE_RANGES : 0) |
      (s.affinityTimeoutSeconds !== undefined ? XlbServiceFlag.values.AFFINITY : 0);
    this.maps.xlb_frontends.update(
      this.frontendKey(f),
      XlbService.encode({ id: s.id, flags, affinity_timeout_s: s.affinityTimeoutSeconds ?? 0 }),
    );
    this.invalidateFlowCache();
  }

  deleteFrontend(f: Frontend): boolean {
    const deleted = this.maps.xlb_frontends.delete(this.frontendKey(f));
    this.invalidateFlowCache();
    return deleted;
  }

  setBackend(id: number, b: BackendEntry): void {
    checkPort(b.port, 'backend port');
    const addr = toDatapathAddress(b.address);
    const node = toDatapathAddress(b.nodeAddress);
    if (addr.family !== node.family) {
      throw new DatapathMapError(
        `backend ${b.address} and its node ${b.nodeAddress} are of different families`,
      );
    }
    const value = XlbBackend.encode({
      addr: addr.bytes,
      node_addr: node.bytes,
      port_be: b.port,
      family: addr.family,
      state:
        b.state === 'active' ? XlbBackendState.values.ACTIVE : XlbBackendState.values.TERMINATING,
      flags: b.local ? XlbBackendFlag.values.LOCAL : 0,
    });
    const old = this.maps.xlb_backends.lookup(key32(id));
    this.maps.xlb_backends.update(key32(id), value);
    // Cached flows keep the next hop towards the backend's node: a backend
    // that moved (another address, node or locality) must not keep it.
    if (old && !sameBackendPlace(old, value)) this.invalidateFlowCache();
  }

  /** Marks a backend gone (its array slot zeroed): flows pinned to it are balanced afresh. */
  clearBackend(id: number): void {
    this.maps.xlb_backends.update(key32(id), Buffer.alloc(XlbBackend.size));
  }

  /**
   * Installs a service's whole Maglev table in one swap: a new inner map
   * (slot 0 = M, slots 1..M = backend ids) replaces the old one atomically.
   */
  installMaglevTable(serviceId: number, table: ArrayLike<number>): void {
    const m = table.length;
    if (m < 1)
      throw new DatapathMapError(`service ${serviceId}: a Maglev table needs at least one slot`);
    using inner = BpfMap.create({
      type: 'array',
      name: 'xlb_maglev_t',
      keySize: 4,
      valueSize: 4,
      maxEntries: m + 1,
      flags: MapFlag.innerMap,
    });
    const entries: Array<[Buffer, Buffer]> = [[key32(0), key32(m)]];
    for (let i = 0; i < m; i++) entries.push([key32(i + 1), key32(table[i]!)]);
    inner.updateBatch(entries);
    this.maps.xlb_maglev.setInnerMap(key32(serviceId), inner);
  }

  removeMaglevTable(serviceId: number): boolean {
    return this.maps.xlb_maglev.delete(key32(serviceId));
  }

  /** The installed table (without the size slot), or undefined. */
  maglevTable(serviceId: number): number[] | undefined {
    using inner = this.maps.xlb_maglev.innerMap(key32(serviceId));
    if (!inner) return undefined;
    const size = inner.lookup(key32(0))!.readUInt32LE(0);
    const out: number[] = [];
    for (let i = 1; i <= size; i++) out.push(inner.lookup(key32(i))!.readUInt32LE(0));
    return out;
  }

  private lpmKey(serviceId: number, cidr: string): Buffer {
    const { address, prefix } = parseCidr(cidr);
    return XlbLpmKey.encode({
      prefixlen: 64 + prefix,
      service_id: serviceId,
      family: address.family,
      addr: address.bytes,
    });
  }

  addSourceRange(serviceId: number, cidr: string): void {
    this.maps.xlb_source_ranges.update(this.lpmKey(serviceId, cidr), key32(1));
    this.invalidateFlowCache();
  }

  deleteSourceRange(serviceId: number, cidr: string): boolean {
    const deleted = this.maps.xlb_source_ranges.delete(this.lpmKey(serviceId, cidr));
    this.invalidateFlowCache();
    return deleted;
  }

  drops(): SlotRow<DropName>[] {
    return readSlots(this.maps.xlb_drops, XlbDrop);
  }

  outcomes(): SlotRow<OutcomeName>[] {
    return readSlots(this.maps.xlb_outcomes, XlbOutcome);
  }

  events(): SlotRow<EventName>[] {
    return readSlots(this.maps.xlb_events, XlbEvent);
  }

  serviceCounters(serviceId: number): LbCounters {
    return readLbCounters(this.maps.xlb_service_stats, serviceId);
  }

  backendCounters(backendId: number): LbCounters {
    return readLbCounters(this.maps.xlb_backend_stats, backendId);
  }

  /** The connection table, decoded. */
  *flows(): Generator<FlowEntry> {
    for (const [k, v] of this.maps.xlb_conntrack.entries()) {
      const key = XlbFlowKey.decode(k);
      const flow = XlbFlow.decode(v);
      const family = key.family as Family;
      yield {
        client: fromDatapathAddress(key.src, family),
        clientPort: key.sport_be,
        vip: fromDatapathAddress(key.dst, family),
        port: key.dport_be,
        proto: protoName(key.proto),
        backendId: flow.backend_id,
        serviceId: flow.service_id,
        lastSeenNs: flow.last_seen_ns,
      };
    }
  }

  /** Reverse NAT entries: pod side of a flow -> VIP:port. */
  *reverseEntries(): Generator<{
    pod: string;
    podPort: number;
    client: string;
    clientPort: number;
    vip: string;
    port: number;
  }> {
    for (const [k, v] of this.maps.xlb_reverse.entries()) {
      const key = XlbFlowKey.decode(k);
      const rn = XlbReverseNat.decode(v);
      const family = key.family as Family;
      yield {
        pod: fromDatapathAddress(key.src, family),
        podPort: key.sport_be,
        client: fromDatapathAddress(key.dst, family),
        clientPort: key.dport_be,
        vip: fromDatapathAddress(rn.vip, family),
        port: rn.port_be,
      };
    }
  }

  close(): void {
    for (const m of Object.values(this.maps)) m.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
