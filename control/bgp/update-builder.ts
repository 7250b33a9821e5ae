// Packs prefixes into as few UPDATEs as fit in 4096 bytes: prefixes that
// share attributes travel together, IPv4 in the NLRI field (with NEXT_HOP),
// IPv6 in MP_REACH_NLRI (RFC 4760); withdrawals likewise in the withdrawn
// routes field and MP_UNREACH_NLRI.
import {
  DEFAULT_CONTEXT,
  encodeAttributes,
  type CodecContext,
  type PathAttributes,
} from './codec/attributes.js';
import { HEADER_LENGTH, MAX_MESSAGE_LENGTH } from './codec/header.js';
import { encodedPrefixLength, parsePrefix, type Family } from './codec/prefix.js';
import type { UpdateMessage } from './codec/update.js';

/** Fixed part of an UPDATE body: withdrawn routes length and total path attribute length. */
const UPDATE_FIXED = 4;
const ROOM = MAX_MESSAGE_LENGTH - HEADER_LENGTH - UPDATE_FIXED;

export interface NextHops {
  ipv4?: string;
  ipv6?: string;
  /** Sent after the global IPv6 next hop (RFC 2545), for peers on the same link. */
  ipv6LinkLocal?: string;
}

function attributeHeader(valueLength: number): number {
  return valueLength > 255 ? 4 : 3;
}

/** Splits prefixes into runs whose encoded size stays within room(run so far). */
function chunks(prefixes: readonly string[], fits: (bytes: number) => boolean): string[][] {
  const out: string[][] = [];
  let run: string[] = [];
  let bytes = 0;
  for (const text of prefixes) {
    const n = encodedPrefixLength(parsePrefix(text));
    if (!fits(bytes + n)) {
      if (run.length === 0) throw new RangeError('path attributes leave no room for a prefix');
      out.push(run);
      run = [];
      bytes = 0;
      if (!fits(n)) throw new RangeError('path attributes leave no room for a prefix');
    }
    run.push(text);
    bytes += n;
  }
  if (run.length > 0) out.push(run);
  return out;
}

function byFamily(prefixes: readonly string[]): Record<Family, string[]> {
  const out: Record<Family, string[]> = { ipv4: [], ipv6: [] };
  for (const p of prefixes) out[parsePrefix(p).family].push(p);
  return out;
}

/**
 * UPDATEs announcing prefixes (either family, mixed) with the same
 * attributes. attributes must not hold NEXT_HOP or MP attributes: the next
 * hops are added per family. Throws RangeError when a family's next hop is
 * missing or the attributes alone would not fit in a message.
 */
export function buildAnnouncements(
  prefixes: readonly string[],
  attributes: PathAttributes,
  nextHops: NextHops,
  ctx: CodecContext = DEFAULT_CONTEXT,
): UpdateMessage[] {
  const { nextHop: _nh, mpReach: _r, mpUnreach: _u, wire: _w, ...base } = attributes;
  const fam = byFamily(prefixes);
  const out: UpdateMessage[] = [];
  if (fam.ipv4.length > 0) {
    if (nextHops.ipv4 === undefined) throw new RangeError('IPv4 routes need an IPv4 next hop');
    const attrs: PathAttributes = { ...base, nextHop: nextHops.ipv4 };
    const attrLen = encodeAttributes(attrs, ctx).length;
    for (const nlri of chunks(fam.ipv4, (n) => attrLen + n <= ROOM)) {
      out.push({ type: 'update', withdrawn: [], attributes: attrs, nlri });
    }
  }
  if (fam.ipv6.length > 0) {
    if (nextHops.ipv6 === undefined) throw new RangeError('IPv6 routes need an IPv6 next hop');
    const nextHop = nextHops.ipv6;
    const link = nextHops.ipv6LinkLocal;
    const baseLen = encodeAttributes(base, ctx).length;
    // AFI, SAFI, next hop length, next hop(s), reserved byte.
    const mpFixed = 2 + 1 + 1 + (link === undefined ? 16 : 32) + 1;
    const fits = (n: number) => baseLen + attributeHeader(mpFixed + n) + mpFixed + n <= ROOM;
    for (const nlri of chunks(fam.ipv6, fits)) {
      const mpReach =
        link === undefined
          ? { family: 'ipv6' as const, nextHop, nlri }
          : { family: 'ipv6' as const, nextHop, linkLocalNextHop: link, nlri };
      out.push({ type: 'update', withdrawn: [], attributes: { ...base, mpReach }, nlri: [] });
    }
  }
  return out;
}

/** UPDATEs withdrawing prefixes of either family. */
export function buildWithdrawals(prefixes: readonly string[]): UpdateMessage[] {
  const fam = byFamily(prefixes);
  const out: UpdateMessage[] = [];
  for (const withdrawn of chunks(fam.ipv4, (n) => n <= ROOM)) {
    out.push({ type: 'update', withdrawn, attributes: {}, nlri: [] });
  }
  const mpFixed = 3; // AFI, SAFI
  for (const withdrawn of chunks(
    fam.ipv6,
    (n) => attributeHeader(mpFixed + n) + mpFixed + n <= ROOM,
  )) {
    out.push({
      type: 'update',
      withdrawn: [],
      attributes: { mpUnreach: { family: 'ipv6', withdrawn } },
      nlri: [],
    });
  }
  return out;
}
