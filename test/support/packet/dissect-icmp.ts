import { icmpChecksum, icmpv6Checksum } from './checksum.js';
import type { Cursor } from './cursor.js';
import { checksumNote, unverifiable, type Dissectors, type IpInfo } from './dissect-types.js';
import { ICMP_ERROR_TYPES, ICMPV6_ERROR_TYPES } from './numbers.js';

const ICMP_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'echo-reply'],
  [3, 'dest-unreachable'],
  [5, 'redirect'],
  [8, 'echo-request'],
  [11, 'time-exceeded'],
  [12, 'parameter-problem'],
]);

const ICMPV6_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'dest-unreachable'],
  [2, 'packet-too-big'],
  [3, 'time-exceeded'],
  [4, 'parameter-problem'],
  [128, 'echo-request'],
  [129, 'echo-reply'],
]);

/** The offending packet an error quotes, dissected under its own prefix. */
function dissectQuote(c: Cursor, prefix: string, d: Dissectors): void {
  const inner = c.sub(c.end, prefix);
  inner.guard(() => d.ip(inner));
  c.pos = inner.end;
}

function emitIcmpRest(c: Cursor, type: number, code: number): void {
  if (type === 0 || type === 8) {
    c.u16('icmp.id');
    c.u16('icmp.seq');
  } else if (type === 3 && code === 4) {
    c.u16('icmp.unused');
    c.u16('icmp.mtu');
  } else if (type === 5) {
    c.address('icmp.gateway', 4);
  } else if (type === 12) {
    c.u8('icmp.pointer');
    c.uint('icmp.unused', 3);
  } else {
    c.u32(ICMP_ERROR_TYPES.has(type) ? 'icmp.unused' : 'icmp.rest');
  }
}

export function dissectIcmp(c: Cursor, ip: IpInfo, d: Dissectors): void {
  const message = c.buf.subarray(c.pos, c.end);
  const type = c.u8('icmp.type', (v) => ICMP_NAMES.get(v));
  const code = c.u8('icmp.code');
  const at = c.take(2, 'icmp.checksum');
  const stored = c.buf.readUInt16BE(at);
  const note = unverifiable(ip) ?? checksumNote(stored, icmpChecksum(message));
  c.emit('icmp.checksum', stored, at, 2, note);
  emitIcmpRest(c, type, code);
  if (ICMP_ERROR_TYPES.has(type)) dissectQuote(c, 'icmp.inner.', d);
  else c.rest('payload');
}

function emitIcmpv6Rest(c: Cursor, type: number): void {
  if (type === 128 || type === 129) {
    c.u16('icmpv6.id');
    c.u16('icmpv6.seq');
  } else if (type === 2) {
    c.u32('icmpv6.mtu');
  } else if (type === 4) {
    c.u32('icmpv6.pointer');
  } else {
    c.u32(ICMPV6_ERROR_TYPES.has(type) ? 'icmpv6.unused' : 'icmpv6.rest');
  }
}

export function dissectIcmpv6(c: Cursor, ip: IpInfo, d: Dissectors): void {
  const message = c.buf.subarray(c.pos, c.end);
  const type = c.u8('icmpv6.type', (v) => ICMPV6_NAMES.get(v));
  c.u8('icmpv6.code');
  const at = c.take(2, 'icmpv6.checksum');
  const stored = c.buf.readUInt16BE(at);
  const note = unverifiable(ip) ?? checksumNote(stored, icmpv6Checksum(ip.addrs, message));
  c.emit('icmpv6.checksum', stored, at, 2, note);
  emitIcmpv6Rest(c, type);
  if (ICMPV6_ERROR_TYPES.has(type)) dissectQuote(c, 'icmpv6.inner.', d);
  else c.rest('payload');
}
