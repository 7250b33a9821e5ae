// The datapath's shortcuts as the kernel computes them (bpf/include/
// flowcache.h): which bit of xlb_vip_filter an address sets, and which
// xlb_flow_cache slot a flow occupies. The datapath reads addresses and keys
// as 32-bit words in host byte order, so these do too.
import { endianness } from 'node:os';

import { XlbFlowKey } from './abi.js';
import { toDatapathAddress } from './address.js';

export const VIP_FILTER_WORDS = 1024;
/** Slots per CPU unless configured: 4 MiB per CPU at 64 bytes a slot. */
export const DEFAULT_FLOW_CACHE_SIZE = 65536;

const readWord: (b: Buffer, offset: number) => number =
  endianness() === 'LE' ? (b, o) => b.readUInt32LE(o) : (b, o) => b.readUInt32BE(o);

export function vipFilterBit(address: string): number {
  const bytes = toDatapathAddress(address).bytes;
  const x =
    (readWord(bytes, 0) ^ readWord(bytes, 4) ^ readWord(bytes, 8) ^ readWord(bytes, 12)) >>> 0;
  return Math.imul(x, 0x9e3779b1) >>> 16;
}

export interface FlowTuple {
  client: string;
  clientPort: number;
  vip: string;
  port: number;
  proto: 'TCP' | 'UDP';
}

/** The flow cache slot of a flow (the 5-tuple as the packet carries it). */
export function flowCacheSlot(f: FlowTuple, size = DEFAULT_FLOW_CACHE_SIZE): number {
  const src = toDatapathAddress(f.client);
  const key = XlbFlowKey.encode({
    src: src.bytes,
    dst: toDatapathAddress(f.vip).bytes,
    sport_be: f.clientPort,
    dport_be: f.port,
    proto: f.proto === 'TCP' ? 6 : 17,
    family: src.family,
  });
  const w = (i: number): number => readWord(key, i * 4);
  const a = (w(0) ^ w(1) ^ w(2) ^ w(3)) >>> 0;
  const b = (w(4) ^ w(5) ^ w(6) ^ w(7)) >>> 0;
  let h =
    (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(w(8), 0xc2b2ae3d) ^ w(9)) >>>
    0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h & (size - 1);
}
