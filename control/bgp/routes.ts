// Routes as the rest of xlb hands them to a session (a prefix and the
// attributes an operator thinks in: communities as '65000:100', a link
// bandwidth for weighted ECMP), and the path attributes they become towards
// one peer: our AS prepended for an external peer, LOCAL_PREF for an
// internal one.
import type {
  ExtendedCommunity,
  LargeCommunity,
  Origin,
  PathAttributes,
} from './codec/attributes.js';
import { canonicalPrefix } from './codec/prefix.js';
import { linkBandwidth, parseCommunity, parseLargeCommunity } from './communities.js';

export interface RouteAttributes {
  /** Default IGP (0). */
  origin?: Origin;
  med?: number;
  /** Sent to internal peers only; default 100. */
  localPref?: number;
  /** '65000:100', 'no-export', or the 32-bit value. */
  communities?: readonly (string | number)[];
  /** '65000:1:2' or the three numbers. */
  largeCommunities?: readonly (string | LargeCommunity)[];
  extendedCommunities?: readonly ExtendedCommunity[];
  /** Adds the link-bandwidth extended community (bytes per second), for weighted ECMP. */
  linkBandwidth?: number;
}

export interface Route {
  /** '192.0.2.10/32', '2001:db8::10/128' or a bare address (a host route). */
  prefix: string;
  attributes?: RouteAttributes;
}

/** A route checked and in wire terms, with a key equal for routes that can share an UPDATE. */
export interface NormalizedRoute {
  prefix: string;
  attributes: PathAttributes;
  key: string;
}

function uint32(v: number | undefined, what: string): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
    throw new RangeError(`${what} ${v} is not an integer in 0..4294967295`);
  }
}

/**
 * Checks and converts a route. Throws (PrefixError, CommunityError,
 * RangeError) with a message naming what is wrong.
 */
export function normalizeRoute(r: Route, localAs: number): NormalizedRoute {
  const prefix = canonicalPrefix(r.prefix);
  const a = r.attributes ?? {};
  const out: PathAttributes = { origin: a.origin ?? 0 };
  if (![0, 1, 2].includes(out.origin!)) throw new RangeError(`origin ${a.origin} is not 0, 1 or 2`);
  uint32(a.med, 'MED');
  uint32(a.localPref, 'LOCAL_PREF');
  if (a.med !== undefined) out.med = a.med;
  if (a.localPref !== undefined) out.localPref = a.localPref;
  if (a.communities?.length) {
    out.communities = a.communities.map((c) => {
      if (typeof c === 'string') return parseCommunity(c);
      uint32(c, 'community');
      return c;
    });
  }
  if (a.largeCommunities?.length) {
    out.largeCommunities = a.largeCommunities.map((c) => {
      if (typeof c === 'string') return parseLargeCommunity(c);
      uint32(c.global, 'large community');
      uint32(c.local1, 'large community');
      uint32(c.local2, 'large community');
      return { global: c.global, local1: c.local1, local2: c.local2 };
    });
  }
  const ext = [...(a.extendedCommunities ?? [])];
  if (a.linkBandwidth !== undefined) ext.push(linkBandwidth(localAs, a.linkBandwidth));
  for (const c of ext) {
    if (c.value.length !== 6) throw new RangeError('an extended community value is 6 bytes');
  }
  if (ext.length > 0) out.extendedCommunities = ext;
  const key = JSON.stringify(out, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer'
      ? Buffer.from((v as { data: number[] }).data).toString('hex')
      : v,
  );
  return { prefix, attributes: out, key };
}

export interface ExportContext {
  localAs: number;
  /** Peer in our own AS. */
  internal: boolean;
  /** Both sides speak 4-octet ASNs. */
  fourOctetAs: boolean;
}

/** The path attributes a route carries to one peer (without the next hop, added per family). */
export function exportAttributes(base: PathAttributes, c: ExportContext): PathAttributes {
  const { localPref, ...rest } = base;
  const out: PathAttributes = { ...rest };
  if (c.internal) {
    out.asPath = [];
    out.localPref = localPref ?? 100;
  } else {
    out.asPath = [{ type: 'sequence', asns: [c.localAs] }];
    // RFC 6793: a 2-octet peer sees AS_TRANS in AS_PATH and the real ASN in AS4_PATH.
    if (!c.fourOctetAs && c.localAs > 0xffff) {
      out.as4Path = [{ type: 'sequence', asns: [c.localAs] }];
    }
  }
  return out;
}
