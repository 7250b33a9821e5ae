// The typed description of a packet: one plain object per layer, outermost first. The
// constructors only tag the object with its kind; all defaults and derived fields are filled
// in by the encoders, so a layer object can also be written or spread by hand.

import { parseIPv6 } from './addr.js';
import { checkUint, type BytesLike } from './bytes.js';
import type { IPv4Flag, TcpFlag } from './numbers.js';

/**
 * Marks a packet as one fragment of a larger datagram. The layers that follow describe the
 * whole original payload (so checksums cover all of it), and this fragment carries bytes
 * [offset, offset + length) of it. `more` defaults to "not the last piece".
 */
export interface FragmentSlice {
  /** In bytes; must be a multiple of 8. */
  readonly offset: number;
  /** Defaults to everything from `offset` to the end. */
  readonly length?: number;
  readonly more?: boolean;
}

/** Every checksummed layer computes a correct value unless told otherwise. */
export interface ChecksumControl {
  /** Written as is, right or wrong. */
  readonly checksum?: number;
  /** Write a value guaranteed to fail verification. */
  readonly badChecksum?: boolean;
}

export interface EthLayer {
  readonly kind: 'eth';
  readonly src: string;
  readonly dst: string;
  /** Derived from the next layer unless given. */
  readonly type?: number;
}

export interface VlanLayer {
  readonly kind: 'vlan';
  readonly vid: number;
  readonly pcp?: number;
  readonly dei?: boolean;
  /** The ethertype announcing this tag, written by the layer before it (default 0x8100). */
  readonly tpid?: number;
  /** Ethertype of what follows the tag; derived unless given. */
  readonly type?: number;
}

export interface IPv4Layer extends ChecksumControl {
  readonly kind: 'ipv4';
  readonly src: string;
  readonly dst: string;
  readonly ttl?: number;
  readonly tos?: number;
  readonly id?: number;
  readonly flags?: readonly IPv4Flag[];
  /** Raw fragment offset in bytes (multiple of 8); the payload is carried unchanged. */
  readonly fragOffset?: number;
  /** Raw option bytes; zero-padded (EOL) to a multiple of 4 and counted in the IHL. */
  readonly options?: BytesLike;
  readonly protocol?: number;
  readonly totalLength?: number;
  readonly ihl?: number;
  readonly slice?: FragmentSlice;
}

export interface IPv6Layer {
  readonly kind: 'ipv6';
  readonly src: string;
  readonly dst: string;
  readonly hopLimit?: number;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
  readonly payloadLength?: number;
  readonly nextHeader?: number;
}

/** A TLV option of a hop-by-hop or destination options header. Type 0 is Pad1 (no length). */
export interface IPv6Option {
  readonly type: number;
  readonly data?: BytesLike;
  /** RFC 8200 alignment requirement "xn+y" as [x, y], satisfied by inserting padding. */
  readonly align?: readonly [number, number];
}

interface ExtHeaderCommon {
  readonly nextHeader?: number;
  /** Written as is instead of the computed length. */
  readonly hdrExtLen?: number;
}

export interface HopByHopLayer extends ExtHeaderCommon {
  readonly kind: 'hop-by-hop';
  readonly options?: readonly IPv6Option[];
}

export interface DestOptsLayer extends ExtHeaderCommon {
  readonly kind: 'dest-opts';
  readonly options?: readonly IPv6Option[];
}

export interface RoutingLayer extends ExtHeaderCommon {
  readonly kind: 'routing';
  /** 0 (deprecated source route), 2 (Mobile IPv6), 4 (SRv6), or anything for raw `data`. */
  readonly routingType: number;
  /** Defaults to the number of addresses still to visit: n for types 0/2, n-1 for type 4. */
  readonly segmentsLeft?: number;
  readonly addresses?: readonly string[];
  /** Type-specific bytes after the segments-left field, instead of `addresses`. */
  readonly data?: BytesLike;
}

export interface Frag6Layer {
  readonly kind: 'frag6';
  readonly nextHeader?: number;
  readonly id?: number;
  /** Raw offset in bytes (multiple of 8); the payload is carried unchanged. */
  readonly offset?: number;
  readonly more?: boolean;
  readonly slice?: FragmentSlice;
}

/** Any extension header by number with a raw body (everything after next-header and length). */
export interface IPv6ExtLayer extends ExtHeaderCommon {
  readonly kind: 'ipv6-ext';
  readonly type: number;
  readonly body: BytesLike;
}

export type TcpOption =
  | { readonly kind: 'mss'; readonly value: number }
  | { readonly kind: 'wscale'; readonly shift: number }
  | { readonly kind: 'sackOk' }
  | { readonly kind: 'sack'; readonly blocks: readonly (readonly [number, number])[] }
  | { readonly kind: 'timestamp'; readonly value: number; readonly echo: number }
  | { readonly kind: 'nop' }
  | { readonly kind: 'eol' }
  | { readonly kind: 'raw'; readonly bytes: BytesLike };

export interface TcpLayer extends ChecksumControl {
  readonly kind: 'tcp';
  readonly sport: number;
  readonly dport: number;
  readonly seq?: number;
  readonly ack?: number;
  readonly flags?: readonly TcpFlag[];
  readonly window?: number;
  readonly urgent?: number;
  readonly options?: readonly TcpOption[];
  /** Padding byte used to reach a multiple of 4: EOL (default, as most stacks do) or NOP. */
  readonly pad?: 'eol' | 'nop';
  /** In 32-bit words; computed unless given. */
  readonly dataOffset?: number;
  /** The 4 bits between data offset and flags. */
  readonly reserved?: number;
}

export interface UdpLayer extends ChecksumControl {
  readonly kind: 'udp';
  readonly sport: number;
  readonly dport: number;
  readonly length?: number;
}

export interface IcmpLayer extends ChecksumControl {
  readonly kind: 'icmp';
  readonly type: number;
  readonly code?: number;
  /** The 4 bytes after the checksum, as a 32-bit number or raw bytes. */
  readonly rest?: number | BytesLike;
}

export interface Icmpv6Layer extends ChecksumControl {
  readonly kind: 'icmpv6';
  readonly type: number;
  readonly code?: number;
  readonly rest?: number | BytesLike;
}

/** An offending packet quoted in an ICMP error, built from its own layers. */
export interface QuoteLayer {
  readonly kind: 'quote';
  readonly layers: readonly Layer[];
  /** Bytes kept; default IP header + 8 after ICMP (RFC 792), up to 1232 after ICMPv6 (RFC 4443). */
  readonly length?: number;
}

export interface PayloadLayer {
  readonly kind: 'payload';
  readonly data: BytesLike;
}

export type Layer =
  | EthLayer
  | VlanLayer
  | IPv4Layer
  | IPv6Layer
  | HopByHopLayer
  | DestOptsLayer
  | RoutingLayer
  | Frag6Layer
  | IPv6ExtLayer
  | TcpLayer
  | UdpLayer
  | IcmpLayer
  | Icmpv6Layer
  | QuoteLayer
  | PayloadLayer;

type Spec<L extends Layer> = Omit<L, 'kind'>;

export const eth = (spec: Spec<EthLayer>): EthLayer => ({ kind: 'eth', ...spec });
export const vlan = (spec: Spec<VlanLayer>): VlanLayer => ({ kind: 'vlan', ...spec });
export const ipv4 = (spec: Spec<IPv4Layer>): IPv4Layer => ({ kind: 'ipv4', ...spec });
export const ipv6 = (spec: Spec<IPv6Layer>): IPv6Layer => ({ kind: 'ipv6', ...spec });
export const hopByHop = (spec: Spec<HopByHopLayer> = {}): HopByHopLayer => ({
  kind: 'hop-by-hop',
  ...spec,
});
export const destOpts = (spec: Spec<DestOptsLayer> = {}): DestOptsLayer => ({
  kind: 'dest-opts',
  ...spec,
});
export const routing = (spec: Spec<RoutingLayer>): RoutingLayer => ({ kind: 'routing', ...spec });
export const frag6 = (spec: Spec<Frag6Layer> = {}): Frag6Layer => ({ kind: 'frag6', ...spec });
export const ipv6Ext = (
  type: number,
  body: BytesLike,
  spec: ExtHeaderCommon = {},
): IPv6ExtLayer => ({ kind: 'ipv6-ext', type, body, ...spec });
export const tcp = (spec: Spec<TcpLayer>): TcpLayer => ({ kind: 'tcp', ...spec });
export const udp = (spec: Spec<UdpLayer>): UdpLayer => ({ kind: 'udp', ...spec });
export const icmp = (spec: Spec<IcmpLayer>): IcmpLayer => ({ kind: 'icmp', ...spec });
export const icmpv6 = (spec: Spec<Icmpv6Layer>): Icmpv6Layer => ({ kind: 'icmpv6', ...spec });

interface EchoSpec extends ChecksumControl {
  readonly id: number;
  readonly seq: number;
  readonly reply?: boolean;
}

const idSeq = (id: number, seq: number): number =>
  checkUint('echo id', id, 16) * 0x10000 + checkUint('echo seq', seq, 16);

export const icmpEcho = ({ id, seq, reply, ...ck }: EchoSpec): IcmpLayer =>
  icmp({ type: reply ? 0 : 8, code: 0, rest: idSeq(id, seq), ...ck });

/** Destination unreachable, fragmentation needed (type 3 code 4) with the next-hop MTU (RFC 1191). */
export const icmpFragNeeded = ({ mtu, ...ck }: { mtu: number } & ChecksumControl): IcmpLayer =>
  icmp({ type: 3, code: 4, rest: checkUint('next-hop mtu', mtu, 16), ...ck });

export const icmpv6Echo = ({ id, seq, reply, ...ck }: EchoSpec): Icmpv6Layer =>
  icmpv6({ type: reply ? 129 : 128, code: 0, rest: idSeq(id, seq), ...ck });

export const icmpv6PacketTooBig = ({
  mtu,
  ...ck
}: { mtu: number } & ChecksumControl): Icmpv6Layer =>
  icmpv6({ type: 2, code: 0, rest: mtu, ...ck });

/** The offending packet inside an ICMP/ICMPv6 error, truncated the way routers do by default. */
export const quote = (...layers: Layer[]): QuoteLayer => ({ kind: 'quote', layers });

/** Like `quote`, keeping exactly the first `length` bytes of the offending packet. */
export const quoteFirst = (length: number, ...layers: Layer[]): QuoteLayer => ({
  kind: 'quote',
  layers,
  length,
});

export const payload = (data: string | BytesLike): PayloadLayer => ({
  kind: 'payload',
  data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
});

// IPv6 TLV option helpers (RFC 8200 section 4.2 and friends).

export const pad1 = (): IPv6Option => ({ type: 0 });
export const padN = (dataLength: number): IPv6Option => ({
  type: 1,
  data: new Uint8Array(dataLength),
});
/** RFC 2711; its 2n+0 alignment is honoured by padding before it. */
export const routerAlert = (value: number): IPv6Option => ({
  type: 5,
  data: [value >> 8, value & 0xff],
  align: [2, 0],
});
/** RFC 6275 Home Address option (destination options); replaces the pseudo-header source. */
export const homeAddress = (address: string): IPv6Option => ({
  type: 0xc9,
  data: parseIPv6(address),
  align: [8, 6],
});
