// The datapath's flow hash (bpf/include/hash.h) in TypeScript: lookup3
// hashword() over the ten 32-bit words of a struct xlb_flow_key, seeded with
// the cluster-wide hash seed. `xlb explain` and the tests use it to say which
// Maglev slot a flow lands in; a test holds it to the kernel's result.
import { XlbFlowKey } from './abi.js';
import { toDatapathAddress } from './address.js';
import type { L4Proto } from './maps.js';

const rol = (v: number, s: number): number => ((v << s) | (v >>> (32 - s))) >>> 0;

function jhashWords(k: Uint32Array, seed: number): number {
  let a = (0xdeadbeef + (k.length << 2) + seed) >>> 0;
  let b = a;
  let c = a;
  let i = 0;
  let n = k.length;
  const mix = (): void => {
    a = (a - c) >>> 0;
    a = (a ^ rol(c, 4)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol(a, 6)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol(b, 8)) >>> 0;
    b = (b + a) >>> 0;
    a = (a - c) >>> 0;
    a = (a ^ rol(c, 16)) >>> 0;
    c = (c + b) >>> 0;
    b = (b - a) >>> 0;
    b = (b ^ rol(a, 19)) >>> 0;
    a = (a + c) >>> 0;
    c = (c - b) >>> 0;
    c = (c ^ rol(b, 4)) >>> 0;
    b = (b + a) >>> 0;
  };
  const final = (): void => {
    c = (c ^ b) >>> 0;
    c = (c - rol(b, 14)) >>> 0;
    a = (a ^ c) >>> 0;
    a = (a - rol(c, 11)) >>> 0;
    b = (b ^ a) >>> 0;
    b = (b - rol(a, 25)) >>> 0;
    c = (c ^ b) >>> 0;
    c = (c - rol(b, 16)) >>> 0;
    a = (a ^ c) >>> 0;
    a = (a - rol(c, 4)) >>> 0;
    b = (b ^ a) >>> 0;
    b = (b - rol(a, 14)) >>> 0;
    c = (c ^ b) >>> 0;
    c = (c - rol(b, 24)) >>> 0;
  };
  while (n > 3) {
    a = (a + k[i]!) >>> 0;
    b = (b + k[i + 1]!) >>> 0;
    c = (c + k[i + 2]!) >>> 0;
    mix();
    n -= 3;
    i += 3;
  }
  if (n === 0) return c;
  if (n >= 3) c = (c + k[i + 2]!) >>> 0;
  if (n >= 2) b = (b + k[i + 1]!) >>> 0;
  a = (a + k[i]!) >>> 0;
  final();
  return c;
}

export interface FlowTuple {
  client: string;
  clientPort: number;
  port: number;
  proto: L4Proto;
}

/**
 * The hash the datapath computes for a flow. Never covers the destination
 * address (each service has its own table); with session affinity, only the
 * client address.
 */
export function flowHash(flow: FlowTuple, seed: number, affinity = false): number {
  const a = toDatapathAddress(flow.client);
  const key = XlbFlowKey.encode({
    src: a.bytes,
    dst: Buffer.alloc(16),
    sport_be: affinity ? 0 : flow.clientPort,
    dport_be: affinity ? 0 : flow.port,
    proto: affinity ? 0 : flow.proto === 'TCP' ? 6 : 17,
    family: a.family,
  });
  const words = new Uint32Array(10);
  for (let i = 0; i < 10; i++) words[i] = key.readUInt32LE(i * 4);
  return jhashWords(words, seed >>> 0);
}

/** The index into a Maglev table of size m (slot numbering of the table, from 0). */
export function maglevSlot(flow: FlowTuple, seed: number, m: number, affinity = false): number {
  return flowHash(flow, seed, affinity) % m;
}
