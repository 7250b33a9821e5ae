import { tcpChecksum, udpChecksum } from './checksum.js';
import type { Cursor } from './cursor.js';
import { emitTcpOptions } from './dissect-options.js';
import { checksumNote, unverifiable, type IpInfo } from './dissect-types.js';
import { TCP_FLAG_BITS, type TcpFlag } from './numbers.js';

const TCP_FLAGS = Object.keys(TCP_FLAG_BITS) as TcpFlag[];

function emitTcpChecksum(c: Cursor, segment: Buffer, ip: IpInfo): void {
  const at = c.take(2, 'tcp.checksum');
  const stored = c.buf.readUInt16BE(at);
  const note = unverifiable(ip) ?? checksumNote(stored, tcpChecksum(ip.addrs, segment));
  c.emit('tcp.checksum', stored, at, 2, note);
}

function emitTcpFlags(c: Cursor): void {
  const at = c.take(1, 'tcp.flags');
  const bits = c.buf.readUInt8(at);
  c.emit('tcp.flags', TCP_FLAGS.filter((f) => (bits & TCP_FLAG_BITS[f]) !== 0).join('|'), at, 1);
}

export function dissectTcp(c: Cursor, ip: IpInfo): void {
  const segment = c.buf.subarray(c.pos, c.end);
  c.u16('tcp.sport');
  c.u16('tcp.dport');
  c.u32('tcp.seq');
  c.u32('tcp.ack');
  const at = c.take(1, 'tcp.dataOffset');
  const byte = c.buf.readUInt8(at);
  const headerLength = (byte >> 4) * 4;
  c.emit('tcp.dataOffset', byte >> 4, at, 1, `${headerLength} bytes`);
  c.emit('tcp.reserved', byte & 0x0f, at, 1);
  emitTcpFlags(c);
  c.u16('tcp.window');
  emitTcpChecksum(c, segment, ip);
  c.u16('tcp.urgent');
  if (headerLength < 20) {
    c.fail(`data offset ${headerLength / 4} is below the minimum of 5`);
    return;
  }
  const optionsAt = c.pos;
  emitTcpOptions(c, optionsAt, c.bytes(headerLength - 20, 'tcp.options'));
  c.rest('payload');
}

function udpChecksumNote(stored: number, datagram: Buffer, ip: IpInfo): string {
  if (stored === 0) {
    // RFC 768 lets IPv4 senders skip the checksum; RFC 8200 forbids it for IPv6.
    return ip.addrs.src.length === 4 ? 'none (not computed)' : 'WRONG (0 is not allowed over IPv6)';
  }
  return unverifiable(ip) ?? checksumNote(stored, udpChecksum(ip.addrs, datagram));
}

export function dissectUdp(c: Cursor, ip: IpInfo): void {
  const datagram = c.buf.subarray(c.pos, c.end);
  c.u16('udp.sport');
  c.u16('udp.dport');
  c.u16('udp.length', (v) =>
    v === datagram.length || ip.truncated
      ? undefined
      : `WRONG (datagram is ${datagram.length} bytes)`,
  );
  const at = c.take(2, 'udp.checksum');
  const stored = c.buf.readUInt16BE(at);
  c.emit('udp.checksum', stored, at, 2, udpChecksumNote(stored, datagram, ip));
  c.rest('payload');
}
