// Template frames for the generator: Ethernet + IPv4/IPv6 + UDP or TCP with
// correct lengths and checksums, padded to an exact frame size. Benchmarks
// cannot use the test suite's packet builder (test/ is not part of the
// build), and a generator needs only this much.
import ipaddr from 'ipaddr.js';

export interface FrameOptions {
  /** Source and destination IP addresses, both IPv4 or both IPv6. */
  src: string;
  dst: string;
  sport: number;
  dport: number;
  protocol?: 'udp' | 'tcp';
  /** Whole frame length in bytes, without the FCS (64 is the Ethernet minimum less 4). */
  size?: number;
  srcMac?: string;
  dstMac?: string;
}

const ETH_HLEN = 14;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').join(''), 'hex');
  if (b.length !== 6) throw new RangeError(`'${mac}' is not a MAC address`);
  return b;
}

function onesComplementSum(...parts: Buffer[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i += 2) sum += (p[i]! << 8) | (p[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The value to store in an Internet checksum field (computed with the field zero). */
export function internetChecksum(...parts: Buffer[]): number {
  return ~onesComplementSum(...parts) & 0xffff;
}

/** Builds one frame; throws RangeError when the headers do not fit in `size`. */
export function buildFrame(o: FrameOptions): Buffer {
  const src = Buffer.from(ipaddr.parse(o.src).toByteArray());
  const dst = Buffer.from(ipaddr.parse(o.dst).toByteArray());
  if (src.length !== dst.length) throw new RangeError(`${o.src} and ${o.dst} differ in family`);
  const v6 = src.length === 16;
  const protocol = o.protocol ?? 'udp';
  const l3Len = v6 ? 40 : 20;
  const l4Len = protocol === 'udp' ? 8 : 20;
  const size = o.size ?? 64;
  const headers = ETH_HLEN + l3Len + l4Len;
  if (size < headers)
    throw new RangeError(`a ${size}-byte frame cannot hold ${headers} bytes of headers`);

  const f = Buffer.alloc(size);
  macBytes(o.dstMac ?? '02:00:00:00:00:02').copy(f, 0);
  macBytes(o.srcMac ?? '02:00:00:00:00:01').copy(f, 6);
  f.writeUInt16BE(v6 ? 0x86dd : 0x0800, 12);

  const l3 = f.subarray(ETH_HLEN, ETH_HLEN + l3Len);
  const segment = f.subarray(ETH_HLEN + l3Len);
  const proto = protocol === 'udp' ? IPPROTO_UDP : IPPROTO_TCP;
  let pseudo: Buffer;
  if (v6) {
    l3.writeUInt32BE(0x60000000, 0);
    l3.writeUInt16BE(segment.length, 4);
    l3[6] = proto;
    l3[7] = 64;
    src.copy(l3, 8);
    dst.copy(l3, 24);
    pseudo = Buffer.alloc(40);
    src.copy(pseudo, 0);
    dst.copy(pseudo, 16);
    pseudo.writeUInt32BE(segment.length, 32);
    pseudo[39] = proto;
  } else {
    l3[0] = 0x45;
    l3.writeUInt16BE(l3Len + segment.length, 2);
    l3.writeUInt16BE(0x4000, 6); // don't fragment
    l3[8] = 64;
    l3[9] = proto;
    src.copy(l3, 12);
    dst.copy(l3, 16);
    l3.writeUInt16BE(internetChecksum(l3), 10);
    pseudo = Buffer.alloc(12);
    src.copy(pseudo, 0);
    dst.copy(pseudo, 4);
    pseudo[9] = proto;
    pseudo.writeUInt16BE(segment.length, 10);
  }

  segment.writeUInt16BE(o.sport, 0);
  segment.writeUInt16BE(o.dport, 2);
  let checkAt: number;
  if (protocol === 'udp') {
    segment.writeUInt16BE(segment.length, 4);
    checkAt = 6;
  } else {
    segment.writeUInt32BE(1, 4); // sequence number
    segment[12] = 5 << 4; // data offset: 20 bytes, no options
    segment[13] = 0x02; // SYN
    segment.writeUInt16BE(65535, 14); // window
    checkAt = 16;
  }
  // Recognisable payload bytes rather than zeros.
  for (let i = l4Len; i < segment.length; i++) segment[i] = i & 0xff;
  const check = internetChecksum(pseudo, segment);
  // RFC 768: a computed UDP checksum of 0 is sent as all ones.
  segment.writeUInt16BE(protocol === 'udp' && check === 0 ? 0xffff : check, checkAt);
  return f;
}

/** Where a frame's TCP or UDP header starts (Ethernet without VLAN), or undefined. */
export function l4Offset(
  frame: Buffer,
): { offset: number; protocol: number; v6: boolean } | undefined {
  if (frame.length < ETH_HLEN) return undefined;
  const type = frame.readUInt16BE(12);
  let offset: number;
  let protocol: number;
  let v6 = false;
  if (type === 0x0800 && frame.length >= ETH_HLEN + 20) {
    offset = ETH_HLEN + (frame[ETH_HLEN]! & 0x0f) * 4;
    protocol = frame[ETH_HLEN + 9]!;
    if ((frame.readUInt16BE(ETH_HLEN + 6) & 0x1fff) !== 0) return undefined;
  } else if (type === 0x86dd && frame.length >= ETH_HLEN + 40) {
    offset = ETH_HLEN + 40;
    protocol = frame[ETH_HLEN + 6]!;
    v6 = true;
  } else {
    return undefined;
  }
  if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) return undefined;
  const l4Len = protocol === IPPROTO_UDP ? 8 : 20;
  if (frame.length < offset + l4Len) return undefined;
  return { offset, protocol, v6 };
}

/** The source port of a TCP or UDP frame the generator can vary, or undefined. */
export function sourcePort(frame: Buffer): number | undefined {
  const l4 = l4Offset(frame);
  return l4 ? frame.readUInt16BE(l4.offset) : undefined;
}
