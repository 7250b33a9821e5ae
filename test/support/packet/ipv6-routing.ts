// Type-specific part of the IPv6 routing header: shared by the builder (to lay it out and to
// find the checksum's final destination) and the dissector.

import { parseIPv6 } from './addr.js';
import { checkUint, toBuffer } from './bytes.js';
import type { RoutingLayer } from './layers.js';

export const SRH = 4;

/** Bytes after the segments-left field: 4 bytes of type-specific header, then addresses. */
export function routingData(layer: RoutingLayer): Buffer {
  if (layer.data !== undefined) return toBuffer(layer.data);
  const addresses = (layer.addresses ?? []).map(parseIPv6);
  // Types 0 and 2 have a reserved word here; SRv6 has last-entry, flags and tag (RFC 8754).
  const fixed = Buffer.alloc(4);
  if (layer.routingType === SRH)
    fixed.writeUInt8(checkUint('SRH last entry', addresses.length - 1, 8), 0);
  return Buffer.concat([fixed, ...addresses]);
}

export function defaultSegmentsLeft(layer: RoutingLayer): number {
  if (layer.addresses === undefined) return 0;
  const n = layer.addresses.length;
  return layer.routingType === SRH ? Math.max(n - 1, 0) : n;
}

/** Number of complete 16-byte addresses after the 4 type-specific bytes. */
export function routingAddressCount(data: Buffer): number {
  return Math.max(Math.floor((data.length - 4) / 16), 0);
}

export function routingAddress(data: Buffer, index: number): Buffer {
  return data.subarray(4 + 16 * index, 20 + 16 * index);
}

/**
 * Where the packet is finally going while segments are left: the last listed address for
 * types 0 and 2, the first for SRv6 whose list is stored in reverse (RFC 8754). Upper-layer
 * checksums use it (RFC 8200 section 8.1).
 */
export function routingFinalDst(
  routingType: number,
  segmentsLeft: number,
  data: Buffer,
): Buffer | undefined {
  const count = routingAddressCount(data);
  if (segmentsLeft === 0 || count === 0) return undefined;
  if (routingType === 0 || routingType === 2) return routingAddress(data, count - 1);
  if (routingType === SRH) return routingAddress(data, 0);
  return undefined;
}
