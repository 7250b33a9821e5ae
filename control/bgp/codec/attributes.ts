// Path attributes (RFC 4271 section 4.3 and 5, RFC 1997, RFC 4360, RFC 4760,
// RFC 6793, RFC 8092): decoded into named fields, with the flag, length and
// value checks of RFC 4271 section 6.3, each failing with its own subcode and
// the offending attribute as NOTIFICATION data. Attributes xlb does not know
// are kept as bytes. The decoder also notes the order and the flags a peer
// chose where the RFC leaves a choice, and the encoder follows that note, so
// a captured UPDATE re-encodes to the very same bytes.
import { Afi, Safi } from './capabilities.js';
import { ErrorCode, UpdateSubcode, fail, ok, type Decoded } from './errors.js';
import { addressText, decodePrefixes, encodePrefixes, parsePrefix, type Family } from './prefix.js';

export const AttrFlag = {
  Optional: 0x80,
  Transitive: 0x40,
  Partial: 0x20,
  ExtendedLength: 0x10,
} as const;

export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  MultiExitDisc: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  ExtendedCommunities: 16,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunities: 32,
} as const;

export const Origin = { Igp: 0, Egp: 1, Incomplete: 2 } as const;
export type Origin = (typeof Origin)[keyof typeof Origin];

export const AsPathSegmentType = {
  set: 1,
  sequence: 2,
  confedSequence: 3,
  confedSet: 4,
} as const;
export type AsPathSegmentKind = keyof typeof AsPathSegmentType;

export interface AsPathSegment {
  type: AsPathSegmentKind;
  asns: number[];
}

export interface Aggregator {
  asn: number;
  address: string;
}

export interface LargeCommunity {
  global: number;
  local1: number;
  local2: number;
}

/** RFC 4360: type (high octet), subtype (low octet), 6 bytes of value. */
export interface ExtendedCommunity {
  type: number;
  subtype: number;
  value: Buffer;
}

/** MP_REACH_NLRI for IPv4 or IPv6 unicast. */
export interface MpReach {
  family: Family;
  nextHop: string;
  /** IPv6 only: the link-local next hop sent after the global one (RFC 2545). */
  linkLocalNextHop?: string;
  nlri: string[];
}

/** MP_UNREACH_NLRI for IPv4 or IPv6 unicast; empty withdrawn is End-of-RIB. */
export interface MpUnreach {
  family: Family;
  withdrawn: string[];
}

/** An attribute kept as it came: unknown ones, and MP attributes of other families. */
export interface RawAttribute {
  flags: number;
  type: number;
  value: Buffer;
}

/** How the peer laid the attributes out where the RFC leaves a choice. */
export interface WireLayout {
  /** Type codes in the order they came. */
  order: number[];
  /** Known attributes that had the extended length flag with a value under 256 bytes. */
  extendedLength: number[];
  /** Known optional transitive attributes that had the partial flag. */
  partial: number[];
}

export interface PathAttributes {
  origin?: Origin;
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: true;
  aggregator?: Aggregator;
  communities?: number[];
  extendedCommunities?: ExtendedCommunity[];
  largeCommunities?: LargeCommunity[];
  as4Path?: AsPathSegment[];
  as4Aggregator?: Aggregator;
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  other?: RawAttribute[];
  wire?: WireLayout;
}

export interface CodecContext {
  /** Both sides offered the 4-octet AS capability: AS_PATH and AGGREGATOR carry 4-byte ASNs. */
  fourOctetAs: boolean;
}

export const DEFAULT_CONTEXT: CodecContext = { fourOctetAs: true };

type Category = 'wellKnown' | 'optionalTransitive' | 'optionalNonTransitive';

const CATEGORY: Record<number, Category> = {
  [AttrType.Origin]: 'wellKnown',
  [AttrType.AsPath]: 'wellKnown',
  [AttrType.NextHop]: 'wellKnown',
  [AttrType.MultiExitDisc]: 'optionalNonTransitive',
  [AttrType.LocalPref]: 'wellKnown',
  [AttrType.AtomicAggregate]: 'wellKnown',
  [AttrType.Aggregator]: 'optionalTransitive',
  [AttrType.Communities]: 'optionalTransitive',
  [AttrType.MpReachNlri]: 'optionalNonTransitive',
  [AttrType.MpUnreachNlri]: 'optionalNonTransitive',
  [AttrType.ExtendedCommunities]: 'optionalTransitive',
  [AttrType.As4Path]: 'optionalTransitive',
  [AttrType.As4Aggregator]: 'optionalTransitive',
  [AttrType.LargeCommunities]: 'optionalTransitive',
};

const BASE_FLAGS: Record<Category, number> = {
  wellKnown: AttrFlag.Transitive,
  optionalTransitive: AttrFlag.Optional | AttrFlag.Transitive,
  optionalNonTransitive: AttrFlag.Optional,
};

export function isKnownAttribute(type: number): boolean {
  return type in CATEGORY;
}

export function familyOf(afi: number, safi: number): Family | undefined {
  if (safi !== Safi.Unicast) return undefined;
  if (afi === Afi.Ipv4) return 'ipv4';
  if (afi === Afi.Ipv6) return 'ipv6';
  return undefined;
}

export function afiOf(family: Family): number {
  return family === 'ipv4' ? Afi.Ipv4 : Afi.Ipv6;
}

// ---------------------------------------------------------------- encoding

function u32(v: number, what: string): Buffer {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what} ${v} is not a 32-bit unsigned integer`);
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}

function addressBytesOf(text: string, family: Family): Buffer {
  const p = parsePrefix(text);
  if (p.family !== family || p.length !== (family === 'ipv4' ? 32 : 128)) {
    throw new RangeError(`'${text}' is not an ${family} address`);
  }
  return p.bytes;
}

function encodeAsPath(segments: readonly AsPathSegment[], asnBytes: 2 | 4): Buffer {
  const parts = segments.map((s) => {
    if (s.asns.length === 0 || s.asns.length > 255) {
      throw new RangeError(`an AS_PATH segment holds 1..255 ASNs, not ${s.asns.length}`);
    }
    const b = Buffer.alloc(2 + asnBytes * s.asns.length);
    b[0] = AsPathSegmentType[s.type];
    b[1] = s.asns.length;
    s.asns.forEach((asn, i) => {
      if (asnBytes === 4) u32(asn, 'ASN').copy(b, 2 + 4 * i);
      else b.writeUInt16BE(asn > 0xffff ? 23456 : asn, 2 + 2 * i);
    });
    return b;
  });
  return Buffer.concat(parts);
}

function encodeAggregator(a: Aggregator, asnBytes: 2 | 4): Buffer {
  const asn = asnBytes === 4 ? u32(a.asn, 'aggregator ASN') : Buffer.alloc(2);
  if (asnBytes === 2) asn.writeUInt16BE(a.asn > 0xffff ? 23456 : a.asn);
  return Buffer.concat([asn, addressBytesOf(a.address, 'ipv4')]);
}

function encodeMpReach(m: MpReach): Buffer {
  let nh = addressBytesOf(m.nextHop, m.family);
  if (m.linkLocalNextHop !== undefined) {
    if (m.family !== 'ipv6') throw new RangeError('a link-local next hop needs IPv6');
    nh = Buffer.concat([nh, addressBytesOf(m.linkLocalNextHop, 'ipv6')]);
  }
  const head = Buffer.alloc(4);
  head.writeUInt16BE(afiOf(m.family), 0);
  head[2] = Safi.Unicast;
  head[3] = nh.length;
  return Buffer.concat([
    head,
    nh,
    Buffer.from([0]),
    encodePrefixes(m.nlri.map((p) => familyPrefix(p, m.family))),
  ]);
}

function familyPrefix(text: string, family: Family) {
  const p = parsePrefix(text);
  if (p.family !== family) throw new RangeError(`${text} is not an ${family} prefix`);
  return p;
}

function encodeMpUnreach(m: MpUnreach): Buffer {
  const head = Buffer.alloc(3);
  head.writeUInt16BE(afiOf(m.family), 0);
  head[2] = Safi.Unicast;
  return Buffer.concat([head, encodePrefixes(m.withdrawn.map((p) => familyPrefix(p, m.family)))]);
}

/** The value bytes of every attribute present, keyed by type code. */
function attributeValues(a: PathAttributes, ctx: CodecContext): Map<number, Buffer> {
  const asnBytes = ctx.fourOctetAs ? 4 : 2;
  const v = new Map<number, Buffer>();
  if (a.origin !== undefined) {
    if (![0, 1, 2].includes(a.origin)) throw new RangeError(`ORIGIN ${a.origin} is not 0..2`);
    v.set(AttrType.Origin, Buffer.from([a.origin]));
  }
  if (a.asPath !== undefined) v.set(AttrType.AsPath, encodeAsPath(a.asPath, asnBytes));
  if (a.nextHop !== undefined) v.set(AttrType.NextHop, addressBytesOf(a.nextHop, 'ipv4'));
  if (a.med !== undefined) v.set(AttrType.MultiExitDisc, u32(a.med, 'MED'));
  if (a.localPref !== undefined) v.set(AttrType.LocalPref, u32(a.localPref, 'LOCAL_PREF'));
  if (a.atomicAggregate === true) v.set(AttrType.AtomicAggregate, Buffer.alloc(0));
  if (a.aggregator !== undefined) {
    v.set(AttrType.Aggregator, encodeAggregator(a.aggregator, asnBytes));
  }
  if (a.communities !== undefined) {
    v.set(AttrType.Communities, Buffer.concat(a.communities.map((c) => u32(c, 'community'))));
  }
  if (a.mpReach !== undefined) v.set(AttrType.MpReachNlri, encodeMpReach(a.mpReach));
  if (a.mpUnreach !== undefined) v.set(AttrType.MpUnreachNlri, encodeMpUnreach(a.mpUnreach));
  if (a.extendedCommunities !== undefined) {
    v.set(
      AttrType.ExtendedCommunities,
      Buffer.concat(
        a.extendedCommunities.map((c) => {
          if (c.value.length !== 6) throw new RangeError('an extended community value is 6 bytes');
          return Buffer.concat([Buffer.from([c.type, c.subtype]), c.value]);
        }),
      ),
    );
  }
  if (a.as4Path !== undefined) v.set(AttrType.As4Path, encodeAsPath(a.as4Path, 4));
  if (a.as4Aggregator !== undefined) {
    v.set(AttrType.As4Aggregator, encodeAggregator(a.as4Aggregator, 4));
  }
  if (a.largeCommunities !== undefined) {
    v.set(
      AttrType.LargeCommunities,
      Buffer.concat(
        a.largeCommunities.map((c) =>
          Buffer.concat([
            u32(c.global, 'large community global'),
            u32(c.local1, 'large community local 1'),
            u32(c.local2, 'large community local 2'),
          ]),
        ),
      ),
    );
  }
  return v;
}

function attributeBytes(flags: number, type: number, value: Buffer): Buffer {
  if (value.length > 0xffff) throw new RangeError(`attribute ${type} exceeds 65535 bytes`);
  const extended = value.length > 255 || (flags & AttrFlag.ExtendedLength) !== 0;
  const head = Buffer.alloc(extended ? 4 : 3);
  head[0] = extended ? flags | AttrFlag.ExtendedLength : flags & ~AttrFlag.ExtendedLength;
  head[1] = type;
  if (extended) head.writeUInt16BE(value.length, 2);
  else head[2] = value.length;
  return Buffer.concat([head, value]);
}

/** The path attributes field of an UPDATE. Throws RangeError on values that cannot be encoded. */
export function encodeAttributes(a: PathAttributes, ctx: CodecContext = DEFAULT_CONTEXT): Buffer {
  const values = attributeValues(a, ctx);
  const items = new Map<number, Buffer>();
  for (const [type, value] of values) {
    let flags = BASE_FLAGS[CATEGORY[type]!];
    if (a.wire?.extendedLength.includes(type)) flags |= AttrFlag.ExtendedLength;
    if (a.wire?.partial.includes(type) && CATEGORY[type] === 'optionalTransitive') {
      flags |= AttrFlag.Partial;
    }
    items.set(type, attributeBytes(flags, type, value));
  }
  for (const raw of a.other ?? []) {
    if (items.has(raw.type)) throw new RangeError(`attribute ${raw.type} appears twice`);
    items.set(raw.type, attributeBytes(raw.flags, raw.type, raw.value));
  }
  const order = [...(a.wire?.order ?? []).filter((t) => items.has(t))];
  for (const t of [...items.keys()].sort((x, y) => x - y)) if (!order.includes(t)) order.push(t);
  return Buffer.concat(order.map((t) => items.get(t)!));
}

/**
 * What to pass on of attributes received from a peer (RFC 4271 section 5):
 * unknown optional transitive ones with the partial flag set, unknown
 * optional non-transitive ones not at all.
 */
export function carryUnknown(other: readonly RawAttribute[] | undefined): RawAttribute[] {
  const optionalTransitive = AttrFlag.Optional | AttrFlag.Transitive;
  return (other ?? [])
    .filter((r) => (r.flags & optionalTransitive) === optionalTransitive)
    .map((r) => ({ ...r, flags: r.flags | AttrFlag.Partial }));
}

// ---------------------------------------------------------------- decoding

function updateError(subcode: number, reason: string, data?: Buffer): Decoded<never> {
  return fail(ErrorCode.Update, subcode, reason, data);
}

function decodeAsPath(v: Buffer, asnBytes: 2 | 4): AsPathSegment[] | { error: string } {
  const kinds = Object.keys(AsPathSegmentType) as AsPathSegmentKind[];
  const out: AsPathSegment[] = [];
  let off = 0;
  while (off < v.length) {
    if (off + 2 > v.length) return { error: `segment header cut short at byte ${off}` };
    const kind = kinds[v[off]! - 1];
    const count = v[off + 1]!;
    if (kind === undefined) return { error: `segment type ${v[off]} is not 1..4` };
    if (count === 0) return { error: 'empty segment' };
    const end = off + 2 + count * asnBytes;
    if (end > v.length) return { error: `segment of ${count} ASNs runs past the attribute` };
    const asns: number[] = [];
    for (let i = off + 2; i < end; i += asnBytes) {
      asns.push(asnBytes === 4 ? v.readUInt32BE(i) : v.readUInt16BE(i));
    }
    out.push({ type: kind, asns });
    off = end;
  }
  return out;
}

// Next hops no router could forward to. Whether a next hop is reachable or
// is our own address is a matter of meaning, not syntax: RFC 4271 has such
// routes ignored, not the session reset, so that is left to the caller.
function invalidIpv4NextHop(b: Buffer): string | undefined {
  if (b.readUInt32BE(0) === 0) return 'is 0.0.0.0';
  if (b[0]! >= 224) return 'is multicast, broadcast or reserved';
  return undefined;
}

function invalidIpv6NextHop(b: Buffer): string | undefined {
  if (b.every((x) => x === 0)) return 'is ::';
  if (b[0] === 0xff) return 'is multicast';
  return undefined;
}

function decodeMpReach(v: Buffer): MpReach | RawAttribute | { error: string } {
  if (v.length < 5) return { error: `MP_REACH_NLRI of ${v.length} bytes is too short` };
  const afi = v.readUInt16BE(0);
  const safi = v[2]!;
  const family = familyOf(afi, safi);
  if (family === undefined) return { flags: 0, type: AttrType.MpReachNlri, value: Buffer.from(v) };
  const nhLen = v[3]!;
  if (4 + nhLen + 1 > v.length)
    return { error: `next hop of ${nhLen} bytes runs past the attribute` };
  const nh = v.subarray(4, 4 + nhLen);
  const valid = family === 'ipv4' ? [4] : [16, 32];
  if (!valid.includes(nhLen)) return { error: `${family} next hop length ${nhLen}` };
  const global = nh.subarray(0, family === 'ipv4' ? 4 : 16);
  const bad = family === 'ipv4' ? invalidIpv4NextHop(global) : invalidIpv6NextHop(global);
  if (bad !== undefined) return { error: `next hop ${addressText(global)} ${bad}` };
  const nlri = decodePrefixes(v.subarray(4 + nhLen + 1), family);
  if (!Array.isArray(nlri)) return { error: nlri.error };
  const out: MpReach = { family, nextHop: addressText(global), nlri };
  if (nhLen === 32) out.linkLocalNextHop = addressText(nh.subarray(16, 32));
  return out;
}

function decodeMpUnreach(v: Buffer): MpUnreach | RawAttribute | { error: string } {
  if (v.length < 3) return { error: `MP_UNREACH_NLRI of ${v.length} bytes is too short` };
  const family = familyOf(v.readUInt16BE(0), v[2]!);
  if (family === undefined)
    return { flags: 0, type: AttrType.MpUnreachNlri, value: Buffer.from(v) };
  const withdrawn = decodePrefixes(v.subarray(3), family);
  if (!Array.isArray(withdrawn)) return { error: withdrawn.error };
  return { family, withdrawn };
}

function isRaw(x: object): x is RawAttribute {
  return 'flags' in x && 'type' in x;
}

/** Fixed value lengths, or the unit a length must be a multiple of. */
const FIXED_LENGTH: Record<number, number> = {
  [AttrType.Origin]: 1,
  [AttrType.NextHop]: 4,
  [AttrType.MultiExitDisc]: 4,
  [AttrType.LocalPref]: 4,
  [AttrType.AtomicAggregate]: 0,
  [AttrType.As4Aggregator]: 8,
};
const LENGTH_UNIT: Record<number, number> = {
  [AttrType.Communities]: 4,
  [AttrType.ExtendedCommunities]: 8,
  [AttrType.LargeCommunities]: 12,
};

/** Decodes the path attributes field of an UPDATE. */
export function decodeAttributes(
  bytes: Buffer,
  ctx: CodecContext = DEFAULT_CONTEXT,
): Decoded<PathAttributes> {
  const asnBytes = ctx.fourOctetAs ? 4 : 2;
  const a: PathAttributes = {};
  const wire: WireLayout = { order: [], extendedLength: [], partial: [] };
  const other: RawAttribute[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (off + 2 > bytes.length) {
      return updateError(
        UpdateSubcode.MalformedAttributeList,
        `attribute header cut short at byte ${off}`,
      );
    }
    const flags = bytes[off]!;
    const type = bytes[off + 1]!;
    const extended = (flags & AttrFlag.ExtendedLength) !== 0;
    const headLen = extended ? 4 : 3;
    if (off + headLen > bytes.length) {
      return updateError(
        UpdateSubcode.MalformedAttributeList,
        `attribute ${type} header cut short`,
      );
    }
    const len = extended ? bytes.readUInt16BE(off + 2) : bytes[off + 2]!;
    const start = off + headLen;
    if (start + len > bytes.length) {
      return updateError(
        UpdateSubcode.MalformedAttributeList,
        `attribute ${type} of ${len} bytes runs past the path attributes`,
      );
    }
    const v = bytes.subarray(start, start + len);
    const whole = Buffer.from(bytes.subarray(off, start + len));
    off = start + len;
    if (wire.order.includes(type)) {
      return updateError(UpdateSubcode.MalformedAttributeList, `attribute ${type} appears twice`);
    }
    wire.order.push(type);
    const category = CATEGORY[type];
    if (category === undefined) {
      if ((flags & AttrFlag.Optional) === 0) {
        return updateError(
          UpdateSubcode.UnrecognizedWellKnownAttribute,
          `attribute ${type} is flagged well-known but xlb does not know it`,
          whole,
        );
      }
      other.push({ flags, type, value: Buffer.from(v) });
      continue;
    }
    // Only optional, transitive and (for transitive attributes) partial are
    // checked; the low four bits are to be ignored.
    const expected = BASE_FLAGS[category];
    const partialAllowed = category === 'optionalTransitive';
    const checked = flags & (AttrFlag.Optional | AttrFlag.Transitive | AttrFlag.Partial);
    if (
      (checked & ~AttrFlag.Partial) !== expected ||
      (!partialAllowed && checked & AttrFlag.Partial)
    ) {
      return updateError(
        UpdateSubcode.AttributeFlagsError,
        `attribute ${type} has flags 0x${flags.toString(16)}`,
        whole,
      );
    }
    if (extended && len < 256) wire.extendedLength.push(type);
    if (partialAllowed && checked & AttrFlag.Partial) wire.partial.push(type);
    const fixed = type === AttrType.Aggregator ? 2 + asnBytes + 2 : FIXED_LENGTH[type];
    const unit = LENGTH_UNIT[type];
    if ((fixed !== undefined && len !== fixed) || (unit !== undefined && len % unit !== 0)) {
      return updateError(
        UpdateSubcode.AttributeLengthError,
        `attribute ${type} has length ${len}`,
        whole,
      );
    }
    switch (type) {
      case AttrType.Origin:
        if (v[0]! > 2) {
          return updateError(UpdateSubcode.InvalidOriginAttribute, `ORIGIN ${v[0]}`, whole);
        }
        a.origin = v[0] as Origin;
        break;
      case AttrType.AsPath:
      case AttrType.As4Path: {
        const path = decodeAsPath(v, type === AttrType.As4Path ? 4 : asnBytes);
        if (!Array.isArray(path)) {
          if (type === AttrType.As4Path) {
            return updateError(
              UpdateSubcode.OptionalAttributeError,
              `AS4_PATH: ${path.error}`,
              whole,
            );
          }
          return updateError(UpdateSubcode.MalformedAsPath, `AS_PATH: ${path.error}`);
        }
        if (type === AttrType.AsPath) a.asPath = path;
        else a.as4Path = path;
        break;
      }
      case AttrType.NextHop: {
        const bad = invalidIpv4NextHop(v);
        if (bad !== undefined) {
          return updateError(
            UpdateSubcode.InvalidNextHopAttribute,
            `NEXT_HOP ${addressText(v)} ${bad}`,
            whole,
          );
        }
        a.nextHop = addressText(v);
        break;
      }
      case AttrType.MultiExitDisc:
        a.med = v.readUInt32BE(0);
        break;
      case AttrType.LocalPref:
        a.localPref = v.readUInt32BE(0);
        break;
      case AttrType.AtomicAggregate:
        a.atomicAggregate = true;
        break;
      case AttrType.Aggregator:
      case AttrType.As4Aggregator: {
        const wide = type === AttrType.As4Aggregator || asnBytes === 4;
        const agg = {
          asn: wide ? v.readUInt32BE(0) : v.readUInt16BE(0),
          address: addressText(v.subarray(wide ? 4 : 2)),
        };
        if (type === AttrType.Aggregator) a.aggregator = agg;
        else a.as4Aggregator = agg;
        break;
      }
      case AttrType.Communities:
        a.communities = [];
        for (let i = 0; i < len; i += 4) a.communities.push(v.readUInt32BE(i));
        break;
      case AttrType.ExtendedCommunities:
        a.extendedCommunities = [];
        for (let i = 0; i < len; i += 8) {
          a.extendedCommunities.push({
            type: v[i]!,
            subtype: v[i + 1]!,
            value: Buffer.from(v.subarray(i + 2, i + 8)),
          });
        }
        break;
      case AttrType.LargeCommunities:
        a.largeCommunities = [];
        for (let i = 0; i < len; i += 12) {
          a.largeCommunities.push({
            global: v.readUInt32BE(i),
            local1: v.readUInt32BE(i + 4),
            local2: v.readUInt32BE(i + 8),
          });
        }
        break;
      case AttrType.MpReachNlri:
      case AttrType.MpUnreachNlri: {
        const mp = type === AttrType.MpReachNlri ? decodeMpReach(v) : decodeMpUnreach(v);
        if ('error' in mp) {
          const name = type === AttrType.MpReachNlri ? 'MP_REACH_NLRI' : 'MP_UNREACH_NLRI';
          return updateError(UpdateSubcode.OptionalAttributeError, `${name}: ${mp.error}`, whole);
        }
        if (isRaw(mp)) other.push({ ...mp, flags });
        else if ('nlri' in mp) a.mpReach = mp;
        else a.mpUnreach = mp;
        break;
      }
    }
  }
  if (other.length > 0) a.other = other;
  // The layout is kept only where it differs from what the encoder does anyway.
  const ascending = wire.order.every((t, i) => i === 0 || wire.order[i - 1]! < t);
  if (!ascending || wire.extendedLength.length > 0 || wire.partial.length > 0) a.wire = wire;
  return ok(a);
}
