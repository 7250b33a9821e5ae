import { formatIP } from './addr.js';
import { hex } from './bytes.js';
import type { PseudoAddresses } from './checksum.js';
import type { Cursor } from './cursor.js';
import { emitTlvOptions } from './dissect-options.js';
import { fragmentState, namedNote, type IpInfo } from './dissect-types.js';
import { homeAddressOf } from './ipv6-options.js';
import { routingAddress, routingAddressCount, routingFinalDst, SRH } from './ipv6-routing.js';
import { IP_PROTOCOL_NAMES, IPPROTO, IPV6_EXT_NAMES } from './numbers.js';

export interface ChainResult {
  /** The first header that is not an extension header. */
  readonly nextHeader: number;
  readonly addrs: PseudoAddresses;
  readonly fragment: IpInfo['fragment'];
  /** Fragment offset in bytes when fragmented. */
  readonly offset: number;
}

interface ChainState {
  addrs: PseudoAddresses;
  fragment: IpInfo['fragment'];
  offset: number;
}

const protocolNote = namedNote(IP_PROTOCOL_NAMES);

function dissectFragmentHeader(c: Cursor, p: string, state: ChainState): void {
  c.u8(`${p}.reserved`);
  const at = c.take(2, `${p}.offset`);
  const word = c.buf.readUInt16BE(at);
  state.offset = word & 0xfff8;
  c.emit(`${p}.offset`, state.offset, at, 2);
  c.emit(`${p}.res`, (word >> 1) & 3, at, 2);
  c.emit(`${p}.more`, (word & 1) !== 0, at, 2);
  c.u32(`${p}.id`);
  state.fragment = fragmentState(state.offset, (word & 1) !== 0);
}

function emitAddresses(c: Cursor, path: string, at: number, data: Buffer, count: number): number {
  for (let k = 0; k < count; k++) {
    c.emit(`${path}[${k}]`, formatIP(routingAddress(data, k)), at + 4 + 16 * k, 16);
  }
  return 4 + 16 * count;
}

function dissectRoutingBody(
  c: Cursor,
  p: string,
  at: number,
  body: Buffer,
  state: ChainState,
): void {
  const [routingType = 0, segmentsLeft = 0] = body;
  c.emit(`${p}.routingType`, routingType, at, 1);
  c.emit(`${p}.segmentsLeft`, segmentsLeft, at + 1, 1);
  const data = body.subarray(2);
  const dataAt = at + 2;
  let used = 0;
  if (routingType === 0 || routingType === 2) {
    c.emit(`${p}.reserved`, data.readUInt32BE(0), dataAt, 4);
    used = emitAddresses(c, `${p}.addr`, dataAt, data, routingAddressCount(data));
  } else if (routingType === SRH) {
    const [lastEntry = 0, flags = 0] = data;
    c.emit(`${p}.lastEntry`, lastEntry, dataAt, 1);
    c.emit(`${p}.flags`, flags, dataAt + 1, 1);
    c.emit(`${p}.tag`, data.readUInt16BE(2), dataAt + 2, 2);
    const count = Math.min(lastEntry + 1, routingAddressCount(data));
    used = emitAddresses(c, `${p}.segment`, dataAt, data, count);
  }
  if (used < data.length)
    c.emit(`${p}.data`, hex(data.subarray(used)), dataAt + used, data.length - used);
  const final = routingFinalDst(routingType, segmentsLeft, data);
  if (final !== undefined) state.addrs = { ...state.addrs, dst: final };
}

function dissectBody(
  c: Cursor,
  type: number,
  p: string,
  at: number,
  body: Buffer,
  state: ChainState,
): void {
  if (type === IPPROTO.HOPOPTS || type === IPPROTO.DSTOPTS) {
    emitTlvOptions(c, `${p}.opt`, at, body);
    const home = type === IPPROTO.DSTOPTS ? homeAddressOf(body) : undefined;
    if (home !== undefined) state.addrs = { ...state.addrs, src: home };
  } else if (type === IPPROTO.ROUTING) {
    dissectRoutingBody(c, p, at, body, state);
  } else {
    c.emit(`${p}.data`, hex(body), at, body.length);
  }
}

/** One extension header; returns its next-header value. */
function dissectExtension(c: Cursor, type: number, index: number, state: ChainState): number {
  const p = `ipv6.${IPV6_EXT_NAMES.get(type) ?? `ext${type}`}[${index}]`;
  const next = c.u8(`${p}.nextHeader`, protocolNote);
  if (type === IPPROTO.FRAGMENT) {
    dissectFragmentHeader(c, p, state);
    return next;
  }
  // AH counts 4-octet units beyond the second (RFC 4302); the others 8-octet units beyond the first.
  const total = (n: number): number => (type === IPPROTO.AH ? (n + 2) * 4 : (n + 1) * 8);
  const length = c.u8(`${p}.hdrExtLen`, (n) => `${total(n)} bytes`);
  const at = c.pos;
  const body = c.bytes(total(length) - 2, `${p} body`);
  dissectBody(c, type, p, at, body, state);
  return next;
}

/** Walks the extension headers; stops at the first upper-layer header or non-first fragment. */
export function dissectExtensionChain(
  c: Cursor,
  first: number,
  addrs: PseudoAddresses,
): ChainResult {
  const state: ChainState = { addrs, fragment: 'none', offset: 0 };
  let nextHeader = first;
  for (let i = 0; IPV6_EXT_NAMES.has(nextHeader) && state.fragment !== 'later'; i++) {
    nextHeader = dissectExtension(c, nextHeader, i, state);
  }
  return { nextHeader, ...state };
}
