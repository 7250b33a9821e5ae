// Internet checksum (RFC 1071) and the pseudo-header variants used by TCP, UDP and ICMPv6.

import { IPPROTO } from './numbers.js';

/** Addresses of the IP header an upper-layer checksum covers: 4 bytes each for IPv4, 16 for IPv6. */
export interface PseudoAddresses {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
}

/**
 * Ones-complement sum of the concatenation of `parts`, folded to 16 bits but not complemented.
 * Parts are treated as one byte stream, so an odd-length part shifts the alignment of the next
 * one exactly as if the bytes had been copied together first.
 */
export function onesComplementSum(...parts: readonly Uint8Array[]): number {
  let sum = 0;
  let odd = false;
  for (const part of parts) {
    for (const byte of part) {
      sum += odd ? byte : byte << 8;
      odd = !odd;
    }
  }
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** The 16-bit value to store in a checksum field (the field itself counted as zero). */
export function internetChecksum(...parts: readonly Uint8Array[]): number {
  return ~onesComplementSum(...parts) & 0xffff;
}

/** True when data that includes its checksum field sums to all ones, which is what receivers check. */
export function checksumVerifies(...parts: readonly Uint8Array[]): boolean {
  return onesComplementSum(...parts) === 0xffff;
}

export function ipv4PseudoHeader(
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  length: number,
): Buffer {
  const ph = Buffer.alloc(12);
  ph.set(src, 0);
  ph.set(dst, 4);
  ph.writeUInt8(protocol, 9);
  ph.writeUInt16BE(length, 10);
  return ph;
}

export function ipv6PseudoHeader(
  src: Uint8Array,
  dst: Uint8Array,
  nextHeader: number,
  length: number,
): Buffer {
  const ph = Buffer.alloc(40);
  ph.set(src, 0);
  ph.set(dst, 16);
  ph.writeUInt32BE(length, 32);
  ph.writeUInt8(nextHeader, 39);
  return ph;
}

export function pseudoHeader(addrs: PseudoAddresses, protocol: number, length: number): Buffer {
  return addrs.src.length === 16
    ? ipv6PseudoHeader(addrs.src, addrs.dst, protocol, length)
    : ipv4PseudoHeader(addrs.src, addrs.dst, protocol, length);
}

/** Copy of `data` with the 16-bit field at `offset` zeroed, i.e. what the checksum is computed over. */
function withZeroField(data: Uint8Array, offset: number): Buffer {
  const copy = Buffer.from(data);
  if (offset + 2 <= copy.length) copy.writeUInt16BE(0, offset);
  return copy;
}

/** IPv4 header checksum; `header` is the whole header including options. */
export function ipv4HeaderChecksum(header: Uint8Array): number {
  return internetChecksum(withZeroField(header, 10));
}

export function icmpChecksum(message: Uint8Array): number {
  return internetChecksum(withZeroField(message, 2));
}

function upperLayerChecksum(
  addrs: PseudoAddresses,
  protocol: number,
  segment: Uint8Array,
  field: number,
): number {
  return internetChecksum(
    pseudoHeader(addrs, protocol, segment.length),
    withZeroField(segment, field),
  );
}

export function tcpChecksum(addrs: PseudoAddresses, segment: Uint8Array): number {
  return upperLayerChecksum(addrs, IPPROTO.TCP, segment, 16);
}

/**
 * On the wire a UDP checksum of 0 means "none was computed" (RFC 768), so a sum that really
 * comes out as 0 is sent as its other ones-complement representation, 0xffff. RFC 8200 keeps
 * the same rule for IPv6.
 */
export function udpChecksum(addrs: PseudoAddresses, segment: Uint8Array): number {
  return upperLayerChecksum(addrs, IPPROTO.UDP, segment, 6) || 0xffff;
}

export function icmpv6Checksum(addrs: PseudoAddresses, message: Uint8Array): number {
  return upperLayerChecksum(addrs, IPPROTO.ICMPV6, message, 2);
}

/**
 * A value guaranteed not to verify where `correct` does. XOR 0xffff is not enough: 0x0000 and
 * 0xffff are the same number in ones-complement, so flipping a correct 0x0000 would still
 * verify. Flipping the low bit never lands on the other zero; and 0 is avoided because UDP
 * reads it as "no checksum", which receivers accept.
 */
export function corruptChecksum(correct: number): number {
  return correct ^ 1 || 2;
}
