import { ipv4HeaderChecksum } from './checksum.js';
import type { Cursor } from './cursor.js';
import { emitIPv4Options } from './dissect-options.js';
import { checksumNote, fragmentState, namedNote, type Dissectors } from './dissect-types.js';
import { sourceRouteFinalDst } from './ipv4-options.js';
import { IP_PROTOCOL_NAMES, IPV4_FLAG_BITS, type IPv4Flag } from './numbers.js';

const FLAG_NAMES = Object.keys(IPV4_FLAG_BITS) as IPv4Flag[];

function lengthNote(claimed: number, present: number, header: number): string | undefined {
  if (claimed < header) return `WRONG (shorter than the ${header}-byte header)`;
  if (claimed > present) return `exceeds the ${present} bytes present`;
  return undefined;
}

function emitFlagsAndOffset(c: Cursor): { more: boolean; offset: number } {
  const at = c.take(2, 'ipv4.flags');
  const word = c.buf.readUInt16BE(at);
  const flags = FLAG_NAMES.filter((f) => (word & IPV4_FLAG_BITS[f]) !== 0);
  c.emit('ipv4.flags', flags.join('|'), at, 2);
  const offset = (word & 0x1fff) * 8;
  c.emit('ipv4.fragOffset', offset, at, 2);
  return { more: (word & IPV4_FLAG_BITS.MF) !== 0, offset };
}

function emitChecksum(c: Cursor, start: number, headerLength: number): void {
  const at = c.take(2, 'ipv4.checksum');
  const stored = c.buf.readUInt16BE(at);
  const complete = headerLength >= 20 && start + headerLength <= c.end;
  const note = complete
    ? checksumNote(stored, ipv4HeaderChecksum(c.buf.subarray(start, start + headerLength)))
    : 'unverifiable (truncated)';
  c.emit('ipv4.checksum', stored, at, 2, note);
}

export function dissectIPv4(c: Cursor, d: Dissectors): void {
  const start = c.pos;
  const at = c.take(1, 'ipv4.version');
  const byte = c.buf.readUInt8(at);
  const version = byte >> 4;
  const headerLength = (byte & 0x0f) * 4;
  c.emit('ipv4.version', version, at, 1, version === 4 ? undefined : 'WRONG (expected 4)');
  c.emit('ipv4.ihl', byte & 0x0f, at, 1, `${headerLength} bytes`);
  c.u8('ipv4.tos');
  const present = c.end - start;
  const total = c.u16('ipv4.totalLength', (v) => lengthNote(v, present, headerLength));
  c.u16('ipv4.id');
  const frag = emitFlagsAndOffset(c);
  c.u8('ipv4.ttl');
  const protocol = c.u8('ipv4.protocol', namedNote(IP_PROTOCOL_NAMES));
  emitChecksum(c, start, headerLength);
  const src = c.address('ipv4.src', 4);
  const dst = c.address('ipv4.dst', 4);
  if (headerLength < 20) {
    c.fail(`ihl ${headerLength / 4} is below the minimum of 5`);
    return;
  }
  const options = c.bytes(headerLength - 20, 'ipv4.options');
  emitIPv4Options(c, start + 20, options);

  const body = c.sub(total >= headerLength ? start + total : c.end);
  const fragment = fragmentState(frag.offset, frag.more);
  const addrs = { src, dst: sourceRouteFinalDst(options) ?? dst };
  if (fragment === 'later') body.rest('payload', `fragment data at offset ${frag.offset}`);
  else d.upper(body, protocol, { addrs, fragment, truncated: start + total > c.end });
  c.pos = body.end;
  c.rest('trailer');
}
