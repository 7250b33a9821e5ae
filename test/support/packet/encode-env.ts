// What an encoder knows besides its own layer, and the small rules shared by all encoders.

import { checkUint } from './bytes.js';
import { corruptChecksum, type PseudoAddresses } from './checksum.js';
import type { ChecksumControl, FragmentSlice, Layer } from './layers.js';
import { ETHERTYPE, IPPROTO } from './numbers.js';

export interface EncodeEnv {
  readonly prev: Layer | undefined;
  readonly next: Layer | undefined;
  /** Encoded bytes of every layer after this one. */
  readonly rest: Buffer;
  /** Addresses of the nearest enclosing IP header, as upper-layer checksums use them. */
  readonly pseudo: PseudoAddresses | undefined;
  /** Encodes a separate stack (a quoted packet): element i is the bytes of layers i..end. */
  readonly encodeStack: (layers: readonly Layer[]) => readonly Buffer[];
}

export function ethertypeAfter(next: Layer | undefined): number {
  switch (next?.kind) {
    case 'vlan':
      return next.tpid ?? ETHERTYPE.VLAN;
    case 'ipv4':
      return ETHERTYPE.IPV4;
    case 'ipv6':
      return ETHERTYPE.IPV6;
    default:
      throw new Error(`cannot derive an ethertype from ${next?.kind ?? 'nothing'}: give 'type'`);
  }
}

const PROTOCOL_OF_KIND: Partial<Record<Layer['kind'], number>> = {
  ipv4: IPPROTO.IPIP,
  ipv6: IPPROTO.IPV6,
  'hop-by-hop': IPPROTO.HOPOPTS,
  routing: IPPROTO.ROUTING,
  frag6: IPPROTO.FRAGMENT,
  'dest-opts': IPPROTO.DSTOPTS,
  tcp: IPPROTO.TCP,
  udp: IPPROTO.UDP,
  icmp: IPPROTO.ICMP,
  icmpv6: IPPROTO.ICMPV6,
};

/**
 * IPv4 protocol / IPv6 next header announcing `next`. IPv6 headers followed by nothing say
 * "no next header" (59); anything else that is not a known layer has to be told.
 */
export function protocolAfter(next: Layer | undefined, owner: Layer['kind']): number {
  if (next === undefined && owner !== 'ipv4') return IPPROTO.NONE;
  if (next?.kind === 'ipv6-ext') return next.type;
  const protocol = next === undefined ? undefined : PROTOCOL_OF_KIND[next.kind];
  if (protocol === undefined) {
    const field = owner === 'ipv4' ? 'protocol' : 'nextHeader';
    throw new Error(`${owner}: cannot derive ${field} from ${next?.kind ?? 'nothing'}: give it`);
  }
  return protocol;
}

export function finalChecksum(
  layer: ChecksumControl,
  owner: string,
  compute: () => number,
): number {
  if (layer.checksum !== undefined) return checkUint(`${owner} checksum`, layer.checksum, 16);
  const correct = compute();
  return layer.badChecksum ? corruptChecksum(correct) : correct;
}

export function requirePseudo(env: EncodeEnv, owner: string): PseudoAddresses {
  if (env.pseudo === undefined) {
    throw new Error(`${owner} needs an enclosing ipv4/ipv6 layer for its checksum, or 'checksum'`);
  }
  return env.pseudo;
}

export interface Carried {
  readonly data: Buffer;
  /** Fragment offset in bytes. */
  readonly offset: number;
  readonly more: boolean;
}

/**
 * The part of `rest` an IP (or IPv6 fragment) header carries. With a slice, `rest` is the
 * whole original payload and only the slice travels; otherwise everything travels and the
 * raw offset / more flag are just header fields.
 */
export function carriedPart(
  owner: string,
  rest: Buffer,
  slice: FragmentSlice | undefined,
  raw: { offset: number | undefined; more: boolean },
): Carried {
  if (slice !== undefined && raw.offset !== undefined) {
    throw new Error(`${owner}: give either a slice or a raw fragment offset, not both`);
  }
  const offset = slice?.offset ?? raw.offset ?? 0;
  if (offset % 8 !== 0) {
    throw new RangeError(`${owner}: fragment offset ${offset} is not a multiple of 8`);
  }
  checkUint(`${owner} fragment offset / 8`, offset / 8, 13);
  if (slice === undefined) return { data: rest, offset, more: raw.more };
  const end = slice.length === undefined ? rest.length : offset + slice.length;
  if (end > rest.length || offset > end) {
    throw new RangeError(
      `${owner}: slice [${offset}, ${end}) is outside the ${rest.length}-byte payload`,
    );
  }
  return {
    data: rest.subarray(offset, end),
    offset,
    more: slice.more ?? (raw.more || end < rest.length),
  };
}
