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

export const mapNames = [
  'xlb_vips',
  'xlb_frontends',
  'xlb_maglev',
  'xlb_backends',
  'xlb_conntrack',
  'xlb_reverse',
  'xlb_source_ranges',
  'xlb_nexthops',
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

export class DatapathMaps implements Disposable {
  constructor(private readonly maps: Record<MapName, BpfMap>) {}

  map(name: MapName): BpfMap {
    return this.maps[name];
  }

  setVip(vip: string, frontends: number): void {
    const a = toDatapathAddress(vip);
    this.maps.xlb_vips.update(
      XlbVipKey.encode({ addr: a.bytes, family: a.family }),
      XlbVip.encode({ frontends }),
    );
  }

  deleteVip(vip: string): boolean {
    const a = toDatapathAddress(vip);
    return this.maps.xlb_vips.delete(XlbVipKey.encode({ addr: a.bytes, family: a.family }));
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
  }

  deleteFrontend(f: Frontend): boolean {
    return this.maps.xlb_frontends.delete(this.frontendKey(f));
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
    this.maps.xlb_backends.update(
      key32(id),
      XlbBackend.encode({
        addr: addr.bytes,
        node_addr: node.bytes,
        port_be: b.port,
        family: addr.family,
        state:
          b.state === 'active' ? XlbBackendState.values.ACTIVE : XlbBackendState.values.TERMINATING,
        flags: b.local ? XlbBackendFlag.values.LOCAL : 0,
      }),
    );
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
  }

  deleteSourceRange(serviceId: number, cidr: string): boolean {
    return this.maps.xlb_source_ranges.delete(this.lpmKey(serviceId, cidr));
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
