// Typed writes and reads of the datapath's maps: the only place that knows
// their keys and values. Callers speak addresses, ports and ids.
import { BpfMap, MapFlag, numPossibleCpus } from '../../native/index.js';
import {
  XlbBackend,
  XlbBackendFlag,
  XlbBackendState,
  XlbDrop,
  XlbEvent,
  XlbFlow,
  XlbFlowKey,
  XlbFrontendKey,
  XlbLbCounters,
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
  XlbMaglevEntry,
} from './abi.js';
import { key32 } from './codec.js';
import {
  fromDatapathAddress,
  networkAddress,
  parseCidr,
  toDatapathAddress,
  type DatapathAddress,
  type Family,
} from './address.js';
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

/** Bytes of one element of a Maglev inner table (struct xlb_maglev_entry). */
const ENTRY = XlbMaglevEntry.size;

/**
 * Trailer words a new table makes room for: twice what it needs now, so a
 * service that gains backends keeps rewriting its table in place (a new
 * inner map costs the update an RCU grace period).
 */
function trailerCapacity(length: number): number {
  return length === 0 ? 0 : 2 * length + 8;
}

/**
 * A new inner table for xlb_maglev (layout: struct xlb_maglev_entry in
 * bpf/include/xlb_abi.h): the header {M, half 0 in use}, the slots in half
 * 0, then the trailer's words in half 0, which the datapath never reads (it
 * indexes 1..M only): what the control plane wants to find again without
 * reading or rebuilding the table.
 */
function newMaglevTable(
  serviceId: number,
  table: ArrayLike<number>,
  trailer: ArrayLike<number> = [],
): BpfMap {
  const m = table.length;
  if (m < 1) {
    throw new DatapathMapError(`service ${serviceId}: a Maglev table needs at least one slot`);
  }
  const inner = BpfMap.create({
    type: 'array',
    name: 'xlb_maglev_t',
    keySize: 4,
    valueSize: ENTRY,
    maxEntries: 1 + m + trailerCapacity(trailer.length),
    flags: MapFlag.innerMap | MapFlag.mmapable,
  });
  try {
    const words = scratchWords((ENTRY / 4) * inner.info.maxEntries);
    words[0] = m;
    words[1] = halfWord(0, trailer.length);
    for (let i = 0; i < m; i++) words[2 * (i + 1)] = table[i]!;
    for (let i = 0; i < trailer.length; i++) words[2 * (m + 1 + i)] = trailer[i]!;
    inner.writeMapped(hostWords(words));
  } catch (e) {
    inner.close();
    throw e;
  }
  return inner;
}

/** An installed table's header: its size M and the half the datapath reads. */
interface TableHeader {
  size: number;
  half: 0 | 1;
  /** Trailer words each half has room for. */
  capacity: number;
  /** Trailer words the half in use holds (the header's word1 above its bit 0). */
  trailer: number;
}

/** The header's word1: the half in use and the length of its trailer, flipped together. */
function halfWord(half: 0 | 1, trailer: number): number {
  return (half | (trailer << 1)) >>> 0;
}

function tableHeader(inner: BpfMap): TableHeader | undefined {
  const raw = inner.lookup(key32(0));
  if (raw === undefined) return undefined;
  const { word0: size, word1 } = XlbMaglevEntry.decode(raw);
  if (size < 1 || size >= inner.info.maxEntries) return undefined;
  const capacity = inner.info.maxEntries - 1 - size;
  const half = word1 & 1 ? 1 : 0;
  return { size, half, capacity, trailer: Math.min(word1 >>> 1, capacity) };
}

/**
 * Writes `table` into the half of `inner` the datapath does not read, then
 * flips the header to it: every packet sees the old table or the new one,
 * and no RCU grace period is waited for. False (nothing written) when the
 * inner map's M or trailer room does not fit, so a new inner map must go in.
 * The half written last held the table before the previous flip; a program
 * run lasts microseconds, and passes are milliseconds apart.
 */
function rewriteMaglevTable(
  inner: BpfMap,
  table: ArrayLike<number>,
  trailer: ArrayLike<number>,
): boolean {
  const header = tableHeader(inner);
  if (header === undefined || header.size !== table.length || trailer.length > header.capacity) {
    return false;
  }
  const other = header.half === 0 ? 1 : 0;
  const slots = table instanceof Uint32Array ? table : Uint32Array.from(table);
  inner.writeMappedWords(slots, ENTRY + 4 * other, ENTRY);
  if (header.capacity > 0) {
    const words = new Uint32Array(header.capacity);
    words.set(trailer);
    inner.writeMappedWords(words, ENTRY * (1 + header.size) + 4 * other, ENTRY);
  }
  inner.writeMappedWords(Uint32Array.of(halfWord(other, trailer.length)), 4, ENTRY);
  return true;
}

/**
 * An installed table's words in the half in use, from element `from` on
 * (1: the slots, 1 + M: the trailer), `count` of them, read in batches.
 */
function readHalf(inner: BpfMap, header: TableHeader, from: number, count: number): Uint32Array {
  const out = new Uint32Array(count);
  for (const batch of inner.lookupBatches(inner.info.maxEntries)) {
    batch.keys.forEach((k, i) => {
      const at = k.readUInt32LE(0) - from;
      if (at >= 0 && at < count) out[at] = batch.values[i]!.readUInt32LE(4 * header.half);
    });
  }
  return out;
}

let scratch = new Uint32Array(0);

/**
 * A zeroed word array of this length, reused from call to call: a full sync
 * fills 10,000 tables, and a fresh 128 KiB buffer for each left the
 * allocator with memory it did not give back.
 */
function scratchWords(length: number): Uint32Array {
  if (scratch.length < length) scratch = new Uint32Array(Math.max(length, 2 * scratch.length));
  const words = scratch.subarray(0, length);
  words.fill(0);
  return words;
}

/** A word array's bytes, in host order like every key and value the kernel reads. */
function hostWords(words: Uint32Array): Buffer {
  return Buffer.from(words.buffer, words.byteOffset, words.byteLength);
}

const DOTTED_QUAD =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * toDatapathAddress, with canonical dotted quads (what the model hands over
 * for IPv4) encoded without ipaddr.js: writing 100,000 backends parsed each
 * address twice, a visible part of a full sync.
 */
export function datapathAddress(text: string): DatapathAddress {
  if (!DOTTED_QUAD.test(text)) return toDatapathAddress(text);
  // From the pool: a sync encodes 100,000 of these, briefly each.
  const bytes = Buffer.allocUnsafe(16).fill(0);
  let octet = 0;
  let i = 0;
  for (let c = 0; c < text.length; c++) {
    const ch = text.charCodeAt(c);
    if (ch === 46) {
      bytes[i++] = octet;
      octet = 0;
    } else octet = octet * 10 + (ch - 48);
  }
  bytes[i] = octet;
  return { family: 4, bytes };
}

/** Where each field of xlb_backend's value lies. */
const BACKEND_AT = Object.fromEntries(XlbBackend.fields.map((f) => [f.name, f.offset])) as Record<
  'addr' | 'node_addr' | 'port_be' | 'family' | 'state' | 'flags',
  number
>;

/**
 * fromDatapathAddress of the 16 bytes at `offset`, with IPv4 written out
 * directly: an agent adopting a datapath reads 100,000 backends, two
 * addresses each.
 */
function addressAt(value: Buffer, offset: number, family: Family): string {
  return family === 4
    ? `${value[offset]!}.${value[offset + 1]!}.${value[offset + 2]!}.${value[offset + 3]!}`
    : fromDatapathAddress(value.subarray(offset, offset + 16), family);
}

/** True when a dotted quad is written as the datapath writes it back (no leading zeros). */
export const isCanonicalIPv4 = (text: string): boolean => DOTTED_QUAD.test(text);

function encodeBackend(b: BackendEntry): Buffer {
  const value = Buffer.alloc(XlbBackend.size);
  writeBackend(value, 0, b);
  return value;
}

/** Node addresses, encoded: every backend on a node names the same few. */
const nodeBytes = new Map<string, DatapathAddress>();

function nodeAddressBytes(text: string): DatapathAddress {
  let a = nodeBytes.get(text);
  if (a === undefined) {
    a = datapathAddress(text);
    if (nodeBytes.size > 4096) nodeBytes.clear();
    nodeBytes.set(text, a);
  }
  return a;
}

/** Writes a backend's xlb_backends value at `offset`, with no buffer of its own. */
function writeBackend(buf: Buffer, offset: number, b: BackendEntry): void {
  checkPort(b.port, 'backend port');
  const addr = datapathAddress(b.address);
  const node = nodeAddressBytes(b.nodeAddress);
  if (addr.family !== node.family) {
    throw new DatapathMapError(
      `backend ${b.address} and its node ${b.nodeAddress} are of different families`,
    );
  }
  XlbBackend.write(buf, offset, {
    addr: addr.bytes,
    node_addr: node.bytes,
    port_be: b.port,
    family: addr.family,
    state:
      b.state === 'active' ? XlbBackendState.values.ACTIVE : XlbBackendState.values.TERMINATING,
    flags: b.local ? XlbBackendFlag.values.LOCAL : 0,
  });
}

/** Same place as far as cached flows care: address, port, node and locality. */
function samePlace(a: BackendEntry, b: BackendEntry): boolean {
  return (
    a.address === b.address &&
    a.port === b.port &&
    a.nodeAddress === b.nodeAddress &&
    a.local === b.local
  );
}

/** Elements per batch system call: bounds the memory of one call's keys and values. */
const BATCH = 8192;

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
  /** Invalidations are held back (see holdFlowCacheInvalidation). */
  private holding = false;
  /** An invalidation was held back, or its bump failed: the next flush bumps. */
  private invalidationPending = false;

  constructor(private readonly maps: Record<MapName, BpfMap>) {}

  map(name: MapName): BpfMap {
    return this.maps[name];
  }

  /**
   * Makes every flow cached on any CPU take the full path once more. Called
   * after each change that could alter a cached verdict; a backend's state
   * needs none (the cache re-reads it per packet), a Maglev table neither
   * (it decides new flows only, which the cache does not hold). While
   * invalidations are held, it only notes that one is due.
   */
  invalidateFlowCache(): void {
    if (this.holding) {
      this.invalidationPending = true;
      return;
    }
    this.bumpFlowCacheGeneration();
  }

  private bumpFlowCacheGeneration(): void {
    const slot = key32(0);
    const gen = this.maps.xlb_flow_cache_gen.lookup(slot)?.readUInt32LE(0) ?? 0;
    this.maps.xlb_flow_cache_gen.update(slot, key32((gen + 1) >>> 0));
  }

  /**
   * Holds back invalidateFlowCache() until flushFlowCacheInvalidation(): a
   * reconcile pass that writes thousands of entries bumps the generation once,
   * after the last of them, instead of once per write (two system calls each).
   * Cached verdicts may be used until then, for the length of the pass.
   */
  holdFlowCacheInvalidation(): void {
    this.holding = true;
  }

  /**
   * Stops holding invalidations and bumps the generation once if any was
   * held back. Returns whether it bumped; if the bump fails it throws, and
   * the next flush tries again.
   */
  flushFlowCacheInvalidation(): boolean {
    this.holding = false;
    if (!this.invalidationPending) return false;
    this.bumpFlowCacheGeneration();
    this.invalidationPending = false;
    return true;
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

  /**
   * `sharedBit`: whether another VIP in the map has this one's filter bit,
   * when the caller knows; else every VIP in the map is read to find out.
   */
  deleteVip(vip: string, sharedBit?: boolean): boolean {
    const a = toDatapathAddress(vip);
    const deleted = this.maps.xlb_vips.delete(
      XlbVipKey.encode({ addr: a.bytes, family: a.family }),
    );
    // Another VIP may share the bit: clear it only when none does.
    const bit = vipFilterBit(vip);
    let shared = sharedBit ?? false;
    if (sharedBit === undefined)
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

  /** Every frontend with the service entry it leads to (TCP and UDP; nothing else is ever written). */
  *frontendEntries(): Generator<{ frontend: Frontend; service: ServiceEntry }> {
    for (const [k, v] of this.maps.xlb_frontends.entries()) {
      const key = XlbFrontendKey.decode(k);
      const proto = protoName(key.proto);
      if (proto !== 'TCP' && proto !== 'UDP') continue;
      const svc = XlbService.decode(v);
      yield {
        frontend: {
          vip: fromDatapathAddress(key.addr, key.family as Family),
          port: key.port_be,
          proto,
        },
        service: {
          id: svc.id,
          sourceRanges: (svc.flags & XlbServiceFlag.values.SOURCE_RANGES) !== 0,
          ...((svc.flags & XlbServiceFlag.values.AFFINITY) !== 0
            ? { affinityTimeoutSeconds: svc.affinity_timeout_s }
            : {}),
        },
      };
    }
  }

  /** Every VIP with its (informational) frontend count. */
  *vipEntries(): Generator<{ vip: string; frontends: number }> {
    for (const [k, v] of this.maps.xlb_vips.entries()) {
      const key = XlbVipKey.decode(k);
      yield {
        vip: fromDatapathAddress(key.addr, key.family as Family),
        frontends: XlbVip.decode(v).frontends,
      };
    }
  }

  /**
   * Every backend slot that is not gone, in batches (xlb_backends is a large
   * array). Read at the struct's offsets rather than decoded whole: an
   * adopting agent reads 100,000 backends, and two address buffers and an
   * object each add up.
   */
  *backendEntries(): Generator<{ id: number; backend: BackendEntry }> {
    for (const batch of this.maps.xlb_backends.lookupBatches(4096)) {
      for (let i = 0; i < batch.keys.length; i++) {
        const v = batch.values[i]!;
        const state = v[BACKEND_AT.state]!;
        if (state === XlbBackendState.values.GONE) continue;
        const family = v[BACKEND_AT.family] as Family;
        yield {
          id: batch.keys[i]!.readUInt32LE(0),
          backend: {
            address: addressAt(v, BACKEND_AT.addr, family),
            port: v.readUInt16BE(BACKEND_AT.port_be),
            nodeAddress: addressAt(v, BACKEND_AT.node_addr, family),
            state: state === XlbBackendState.values.ACTIVE ? 'active' : 'terminating',
            local: (v[BACKEND_AT.flags]! & XlbBackendFlag.values.LOCAL) !== 0,
          },
        };
      }
    }
  }

  setBackend(id: number, b: BackendEntry): void {
    const value = encodeBackend(b);
    const old = this.maps.xlb_backends.lookup(key32(id));
    this.maps.xlb_backends.update(key32(id), value);
    // Cached flows keep the next hop towards the backend's node: a backend
    // that moved (another address, node or locality) must not keep it.
    if (old && !sameBackendPlace(old, value)) this.invalidateFlowCache();
  }

  /**
   * setBackend for many backends, a system call per few thousand instead of
   * two each. `previous` is what the slot holds as the caller knows it
   * (undefined: gone): like setBackend's read of the slot, it decides whether
   * cached flows must be invalidated. All or nothing per call only as far as
   * the kernel's batch goes: on an error, some entries may have been written.
   */
  setBackends(
    entries: ReadonlyArray<{
      id: number;
      backend: BackendEntry;
      previous?: BackendEntry | undefined;
    }>,
  ): void {
    let moved = false;
    for (let start = 0; start < entries.length; start += BATCH) {
      const chunk = entries.slice(start, start + BATCH);
      const keys = new Uint32Array(chunk.length);
      const values = Buffer.alloc(chunk.length * XlbBackend.size);
      chunk.forEach((e, i) => {
        keys[i] = e.id;
        writeBackend(values, i * XlbBackend.size, e.backend);
        if (e.previous === undefined || !samePlace(e.previous, e.backend)) moved = true;
      });
      this.maps.xlb_backends.updateBatchPacked(hostWords(keys), values, chunk.length);
    }
    // Cached flows keep the next hop towards the backend's node.
    if (moved) this.invalidateFlowCache();
  }

  /** Marks a backend gone (its array slot zeroed): flows pinned to it are balanced afresh. */
  clearBackend(id: number): void {
    this.maps.xlb_backends.update(key32(id), Buffer.alloc(XlbBackend.size));
  }

  /**
   * Installs a service's whole Maglev table in one swap (see
   * installMaglevTables).
   */
  installMaglevTable(
    serviceId: number,
    table: ArrayLike<number>,
    trailer?: ArrayLike<number>,
  ): void {
    this.installMaglevTables([[serviceId, table, trailer]]);
  }

  /**
   * Installs many tables, each in one swap that no packet sees half done. A
   * service whose inner map has the same M gets the table written into the
   * half not in use and flipped to (see rewriteMaglevTable). The others get
   * new inner maps, with one update of xlb_maglev for all of them: each
   * update of a map-in-map makes the kernel wait for running programs to
   * finish with the old inner maps (an RCU grace period, milliseconds), and a
   * batch waits once. `tables` may be a generator that builds each table as
   * it is asked for: a table is copied into its map at once, so only one is
   * in this process's memory at a time.
   */
  installMaglevTables(
    tables: Iterable<
      | readonly [number, ArrayLike<number>]
      | readonly [number, ArrayLike<number>, ArrayLike<number>?]
    >,
  ): void {
    const inners: BpfMap[] = [];
    try {
      const keys: number[] = [];
      for (const [serviceId, table, trailer = []] of tables) {
        using current = this.maps.xlb_maglev.innerMap(key32(serviceId));
        if (current !== undefined && rewriteMaglevTable(current, table, trailer)) continue;
        const inner = newMaglevTable(serviceId, table, trailer);
        inners.push(inner);
        keys.push(serviceId);
      }
      if (keys.length === 0) return;
      this.maps.xlb_maglev.updateBatchPacked(
        hostWords(Uint32Array.from(keys)),
        hostWords(Uint32Array.from(inners, (m) => m.fd)),
        keys.length,
      );
    } finally {
      // The outer map holds its own references now.
      for (const inner of inners) inner.close();
    }
  }

  removeMaglevTable(serviceId: number): boolean {
    return this.maps.xlb_maglev.delete(key32(serviceId));
  }

  /** The installed table (the slots of the half in use), or undefined. */
  maglevTable(serviceId: number): number[] | undefined {
    const words = this.maglevTableWords(serviceId);
    return words === undefined ? undefined : Array.from(words);
  }

  /**
   * The installed table's slots as words (a number[] takes twice the
   * memory), or undefined. One batch read instead of a system call per slot:
   * tables have up to 131071 slots and an adopting agent may read every one.
   */
  maglevTableWords(serviceId: number): Uint32Array | undefined {
    using inner = this.maps.xlb_maglev.innerMap(key32(serviceId));
    const header = inner && tableHeader(inner);
    if (inner === undefined || header === undefined) return undefined;
    return readHalf(inner, header, 1, header.size);
  }

  /** The installed table's size M and the half the datapath reads, or undefined. */
  maglevTableHeader(serviceId: number): { size: number; half: 0 | 1 } | undefined {
    using inner = this.maps.xlb_maglev.innerMap(key32(serviceId));
    const header = inner && tableHeader(inner);
    return header && { size: header.size, half: header.half };
  }

  /**
   * The installed table's size M and the trailer written after its last slot
   * in the half in use (see installMaglevTables; empty for a table installed
   * without one), read without reading the table.
   */
  maglevTableTrailer(serviceId: number): { size: number; trailer: Uint32Array } | undefined {
    using inner = this.maps.xlb_maglev.innerMap(key32(serviceId));
    const header = inner && tableHeader(inner);
    if (inner === undefined || header === undefined) return undefined;
    const { size, trailer: length } = header;
    if (length > 64) return { size, trailer: readHalf(inner, header, 1 + size, length) };
    const trailer = new Uint32Array(length);
    for (let i = 0; i < length; i++) {
      trailer[i] = inner.lookup(key32(1 + size + i))?.readUInt32LE(4 * header.half) ?? 0;
    }
    return { size, trailer };
  }

  /** Ids of the services that have a Maglev table. */
  maglevServiceIds(): number[] {
    const ids: number[] = [];
    for (const batch of this.maps.xlb_maglev.lookupBatches(4096)) {
      for (const k of batch.keys) ids.push(k.readUInt32LE(0));
    }
    return ids;
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

  /** Every source range as (service id, CIDR with the host bits cleared). */
  *sourceRangeEntries(): Generator<{ serviceId: number; cidr: string }> {
    for (const k of this.maps.xlb_source_ranges.keys()) {
      const key = XlbLpmKey.decode(k);
      const family = key.family as Family;
      const prefix = key.prefixlen - 64;
      yield {
        serviceId: key.service_id,
        cidr: `${networkAddress(key.addr, family, prefix)}/${prefix}`,
      };
    }
  }

  /** Zeroes a service's counters, so an id handed to a new service starts from nothing. */
  resetServiceCounters(serviceId: number): void {
    this.zeroCounters(this.maps.xlb_service_stats, serviceId);
  }

  resetBackendCounters(backendId: number): void {
    this.zeroCounters(this.maps.xlb_backend_stats, backendId);
  }

  /** resetServiceCounters for many ids, in batches. */
  resetServiceCountersMany(serviceIds: readonly number[]): void {
    this.zeroCountersMany(this.maps.xlb_service_stats, serviceIds);
  }

  /** resetBackendCounters for many ids, in batches. */
  resetBackendCountersMany(backendIds: readonly number[]): void {
    this.zeroCountersMany(this.maps.xlb_backend_stats, backendIds);
  }

  private zeroCountersMany(map: BpfMap, ids: readonly number[]): void {
    const zero = Buffer.alloc(XlbLbCounters.size);
    const perCpu = Array.from({ length: numPossibleCpus() }, () => zero);
    // Keys from one buffer: a Buffer of its own per id is garbage by the thousand.
    const keys = Buffer.from(Uint32Array.from(ids).buffer);
    for (let start = 0; start < ids.length; start += BATCH) {
      const end = Math.min(ids.length, start + BATCH);
      const entries: Array<readonly [Buffer, readonly Buffer[]]> = [];
      for (let i = start; i < end; i++) entries.push([keys.subarray(4 * i, 4 * i + 4), perCpu]);
      map.updateBatch(entries);
    }
  }

  private zeroCounters(map: BpfMap, id: number): void {
    const zero = Buffer.alloc(XlbLbCounters.size);
    map.updatePerCpu(
      key32(id),
      Array.from({ length: numPossibleCpus() }, () => zero),
    );
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

  /**
   * Deletes the connection-table entries that name any of these services or
   * backends, so an id handed to someone new cannot inherit old flows.
   * Returns how many went.
   */
  deleteFlows(match: { serviceIds?: Iterable<number>; backendIds?: Iterable<number> }): number {
    const services = new Set(match.serviceIds ?? []);
    const backends = new Set(match.backendIds ?? []);
    if (services.size === 0 && backends.size === 0) return 0;
    const doomed: Buffer[] = [];
    for (const batch of this.maps.xlb_conntrack.lookupBatches(4096)) {
      batch.values.forEach((v, i) => {
        const f = XlbFlow.decode(v);
        if (services.has(f.service_id) || backends.has(f.backend_id)) {
          doomed.push(Buffer.from(batch.keys[i]!));
        }
      });
    }
    let n = 0;
    // One by one: an LRU entry may vanish meanwhile, which a batch delete
    // would report as a failure of the whole batch.
    for (const k of doomed) if (this.maps.xlb_conntrack.delete(k)) n++;
    return n;
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
