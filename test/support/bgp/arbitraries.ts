// fast-check generators of well-formed BGP messages, the shapes the decoder
// returns (canonical prefixes, attributes in type order), so that
// decode(encode(m)) must give m back exactly.
import fc from 'fast-check';

import type {
  AsPathSegment,
  PathAttributes,
  RawAttribute,
} from '../../../control/bgp/codec/attributes.js';
import type { Capability } from '../../../control/bgp/codec/capabilities.js';
import type { BgpMessage } from '../../../control/bgp/codec/message.js';
import type { OpenMessage, OptionalParameter } from '../../../control/bgp/codec/open.js';
import { prefixText, type Family } from '../../../control/bgp/codec/prefix.js';
import type { UpdateMessage } from '../../../control/bgp/codec/update.js';

export const u8 = fc.nat(0xff);
export const u16 = fc.nat(0xffff);
export const u32 = fc.tuple(u16, u16).map(([hi, lo]) => hi * 0x10000 + lo);
const bytes = (maxLength: number, minLength = 0) =>
  fc.uint8Array({ minLength, maxLength }).map((b) => Buffer.from(b));

function masked(raw: Uint8Array, length: number): Buffer {
  const out = Buffer.from(raw);
  for (let bit = length; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

export function prefix(family: Family): fc.Arbitrary<string> {
  const size = family === 'ipv4' ? 4 : 16;
  return fc
    .tuple(fc.nat(size * 8), fc.uint8Array({ minLength: size, maxLength: size }))
    .map(([length, raw]) => prefixText({ family, bytes: masked(raw, length), length }));
}

const prefixes = (family: Family) => fc.uniqueArray(prefix(family), { maxLength: 10 });

/** Any IPv4 address. */
export const ipv4 = fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => [...b].join('.'));
/** An IPv4 address the decoder accepts as a next hop (not 0/8 zero, loopback, multicast, reserved). */
export const ipv4NextHop = fc
  .tuple(fc.integer({ min: 1, max: 223 }), u8, u8, u8)
  .filter(([a]) => a !== 127)
  .map((o) => o.join('.'));
/** Global unicast IPv6 (2000::/3), canonical text. */
export const ipv6Global = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
  const x = Buffer.from(b);
  x[0] = 0x20 | (x[0]! & 0x1f);
  return prefixText({ family: 'ipv6', bytes: x, length: 128 }).split('/')[0]!;
});
export const ipv6LinkLocal = fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => {
  const x = Buffer.concat([Buffer.from('fe80000000000000', 'hex'), Buffer.from(b)]);
  return prefixText({ family: 'ipv6', bytes: x, length: 128 }).split('/')[0]!;
});

function segment(asn: fc.Arbitrary<number>): fc.Arbitrary<AsPathSegment> {
  return fc.record({
    type: fc.constantFrom(
      'set' as const,
      'sequence' as const,
      'confedSequence' as const,
      'confedSet' as const,
    ),
    asns: fc.array(asn, { minLength: 1, maxLength: 10 }),
  });
}

const KNOWN_TYPES = new Set([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 17, 18, 32]);
const raw: fc.Arbitrary<RawAttribute> = fc.record({
  // Optional (unknown well-known attributes are an error), any of transitive / partial / extended length.
  flags: fc
    .tuple(fc.boolean(), fc.boolean(), fc.boolean())
    .map(([t, p, e]) => 0x80 | (t ? 0x40 : 0) | (p ? 0x20 : 0) | (e ? 0x10 : 0)),
  type: fc.integer({ min: 9, max: 255 }).filter((t) => !KNOWN_TYPES.has(t)),
  value: bytes(300),
});

const mpReach = fc.oneof(
  fc.record({ family: fc.constant('ipv4' as const), nextHop: ipv4NextHop, nlri: prefixes('ipv4') }),
  fc.record(
    {
      family: fc.constant('ipv6' as const),
      nextHop: ipv6Global,
      linkLocalNextHop: ipv6LinkLocal,
      nlri: prefixes('ipv6'),
    },
    { requiredKeys: ['family', 'nextHop', 'nlri'] },
  ),
);
const mpUnreach = fc.oneof(
  fc.record({ family: fc.constant('ipv4' as const), withdrawn: prefixes('ipv4') }),
  fc.record({ family: fc.constant('ipv6' as const), withdrawn: prefixes('ipv6') }),
);

export function attributes(asn: fc.Arbitrary<number> = u32): fc.Arbitrary<PathAttributes> {
  return fc
    .record(
      {
        origin: fc.constantFrom(0 as const, 1 as const, 2 as const),
        asPath: fc.array(segment(asn), { maxLength: 3 }),
        nextHop: ipv4NextHop,
        med: u32,
        localPref: u32,
        atomicAggregate: fc.constant(true as const),
        aggregator: fc.record({ asn, address: ipv4 }),
        communities: fc.array(u32, { maxLength: 8 }),
        extendedCommunities: fc.array(fc.record({ type: u8, subtype: u8, value: bytes(6, 6) }), {
          maxLength: 4,
        }),
        largeCommunities: fc.array(fc.record({ global: u32, local1: u32, local2: u32 }), {
          maxLength: 4,
        }),
        as4Path: fc.array(segment(u32), { maxLength: 3 }),
        as4Aggregator: fc.record({ asn: u32, address: ipv4 }),
        mpReach,
        mpUnreach,
        other: fc
          .uniqueArray(raw, { maxLength: 3, selector: (r) => r.type })
          .map((list) => list.sort((a, b) => a.type - b.type)),
      },
      { requiredKeys: [] },
    )
    .map((a) => {
      if (a.other?.length === 0) delete a.other;
      return a;
    });
}

export function update(asn?: fc.Arbitrary<number>): fc.Arbitrary<UpdateMessage> {
  return fc
    .record({ withdrawn: prefixes('ipv4'), attributes: attributes(asn), nlri: prefixes('ipv4') })
    .map(({ withdrawn, attributes: a, nlri }) => {
      // What the decoder insists on when routes are announced (RFC 4271 section 6.3).
      if (nlri.length > 0 || (a.mpReach?.nlri.length ?? 0) > 0) {
        a.origin ??= 0;
        a.asPath ??= [];
      }
      if (nlri.length > 0) a.nextHop ??= '192.0.2.1';
      return { type: 'update' as const, withdrawn, attributes: a, nlri };
    });
}

const capability: fc.Arbitrary<Capability> = fc.oneof(
  fc.record({ kind: fc.constant('multiprotocol' as const), afi: u16, safi: u8 }),
  fc.constant({ kind: 'routeRefresh' as const }),
  fc.record({
    kind: fc.constant('gracefulRestart' as const),
    flags: fc.nat(15),
    restartTime: fc.nat(4095),
    families: fc.array(fc.record({ afi: u16, safi: u8, flags: u8 }), { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('fourOctetAs' as const), asn: u32.filter((a) => a > 0) }),
  fc.record({
    kind: fc.constant('unknown' as const),
    code: u8.filter((c) => ![1, 2, 64, 65].includes(c)),
    value: bytes(16),
  }),
);

const parameter: fc.Arbitrary<OptionalParameter> = fc.oneof(
  fc.record({
    kind: fc.constant('capabilities' as const),
    capabilities: fc.array(capability, { maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('unknown' as const),
    // 255 is RFC 9072's escape; 2 is capabilities.
    type: fc.nat(254).filter((t) => t !== 2),
    value: bytes(16),
  }),
);

export const open: fc.Arbitrary<OpenMessage> = fc
  .record({
    myAs: fc.integer({ min: 1, max: 0xffff }),
    holdTime: fc.oneof(fc.constant(0), fc.integer({ min: 3, max: 0xffff })),
    bgpId: ipv4.filter((a) => a !== '0.0.0.0'),
    parameters: fc.array(parameter, { maxLength: 3 }),
    extended: fc.boolean(),
  })
  .map(({ extended, ...o }) => {
    const m: OpenMessage = { type: 'open', version: 4, ...o };
    if (extended) m.extendedParameters = true;
    return m;
  });

export const message: fc.Arbitrary<BgpMessage> = fc.oneof(
  open,
  update(),
  fc.record({ type: fc.constant('notification' as const), code: u8, subcode: u8, data: bytes(64) }),
  fc.constant({ type: 'keepalive' as const }),
  fc.record({ type: fc.constant('routeRefresh' as const), afi: u16, safi: u8, subtype: u8 }),
);
