// From BGPPeer / BGPAdvertisement objects to what the speaker runs: which
// peers this node talks to (node selector), each peer's session settings,
// and the routes (with attributes) each peer should hold. Pure: the speaker
// does the I/O. A bad peer is a BgpConfigError naming the peer and what to
// fix, so the speaker can skip it and leave every other session alone.
// spec.sourceAddress becomes the session's local address (its TCP
// connections are bound to it, BFD runs from it, and it is the next hop);
// spec.keepaliveTime goes to the session, which caps it by the hold time.
import { createHash } from 'node:crypto';

import { parseIP, familyOf, addressToBigInt } from '../resources/addresses.js';
import { bgpAdvertisementSchema, type BGPAdvertisement } from '../resources/bgp-advertisement.js';
import { bgpPeerSchema, type BGPPeer } from '../resources/bgp-peer.js';
import { fieldIssues, InvalidResourceError } from '../resources/errors.js';
import { parseAddressBlock, type AddressBlock, type IPPool } from '../resources/ip-pool.js';
import { matchesSelector } from '../resources/label-selector.js';
import type { Announcement } from '../model/types.js';

import type { Route, RouteAttributes } from './routes.js';
import type { SessionOptions } from './session.js';

/** What the speaker knows of the node it runs on. */
export interface SpeakerNode {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** The node's own addresses: the first IPv4 is the BGP identifier, and next hops per family. */
  addresses: readonly string[];
}

export class BgpConfigError extends Error {
  constructor(
    readonly peer: string,
    message: string,
  ) {
    super(`BGPPeer '${peer}': ${message}`);
    this.name = 'BgpConfigError';
  }
}

/**
 * A Secret reference resolved to the password, or undefined when it cannot be
 * read; a lookup that knows why throws SecretLookupError with the reason.
 */
export type SecretLookup = (ref: {
  namespace?: string;
  name: string;
  key: string;
}) => string | undefined;

/** Why a SecretLookup cannot give the password, as a sentence for the BGPPeer's report. */
export class SecretLookupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretLookupError';
  }
}

/** Everything one session needs; `key` changes exactly when the session must be rebuilt. */
export interface PeerPlan {
  name: string;
  key: string;
  options: Omit<SessionOptions, 'connect' | 'log'>;
  /** TCP MD5 key (RFC 2385), from the peer's Secret. */
  md5Key?: string;
  /** TTL of our packets: 1 for a directly connected external peer, 255 otherwise. */
  ttl: number;
  /** Carried for the session's graceful restart and BFD support. */
  gracefulRestart?: { enabled: boolean; restartTime: number };
  bfd?: { enabled: boolean; minRxMs: number; minTxMs: number; detectMultiplier: number };
  /** Where peer-specific attributes come from (advertisements naming this peer). */
  peerName: string;
}

/** Settings the speaker applies to every session (tests shorten the timers). */
export interface SessionDefaults {
  backoff?: SessionOptions['backoff'];
  openHoldMs?: number;
  stableMs?: number;
}

function validPeer(raw: unknown): BGPPeer {
  const r = bgpPeerSchema.safeParse(raw);
  if (r.success) return r.data;
  const name = (raw as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
  const issues = fieldIssues(r.error).map((i) =>
    i.path === '' ? i.message : `${i.path}: ${i.message}`,
  );
  throw new BgpConfigError(typeof name === 'string' ? name : '<unnamed>', issues.join('; '));
}

/** Whether this node peers with `peer` (its nodeSelector; every node without one). */
export function peerSelected(peer: BGPPeer, node: SpeakerNode): boolean {
  return matchesSelector(peer.spec.nodeSelector, node.labels);
}

function firstOfFamily(addresses: readonly string[], family: 4 | 6): string | undefined {
  for (const a of addresses) {
    const ip = parseIP(a);
    if (ip !== undefined && familyOf(ip) === family) return ip.toString();
  }
  return undefined;
}

/**
 * The session settings for one peer on this node. Throws BgpConfigError for
 * an invalid peer, a node without an IPv4 address for the identifier, or an
 * MD5 password that cannot be read.
 */
export function planPeer(
  raw: unknown,
  node: SpeakerNode,
  secrets?: SecretLookup,
  defaults: SessionDefaults = {},
): PeerPlan {
  const peer = validPeer(raw);
  const name = peer.metadata.name;
  const spec = peer.spec;
  const routerId = firstOfFamily(node.addresses, 4);
  if (routerId === undefined) {
    throw new BgpConfigError(
      name,
      `node ${node.name} has no IPv4 address to use as the BGP identifier ` +
        `(addresses: ${node.addresses.join(', ') || 'none'})`,
    );
  }
  const source = spec.sourceAddress === undefined ? undefined : parseIP(spec.sourceAddress);
  const peerFamily = familyOf(parseIP(spec.peerAddress)!);
  if (source !== undefined && familyOf(source) !== peerFamily) {
    throw new BgpConfigError(
      name,
      `spec.sourceAddress ${spec.sourceAddress} is IPv${familyOf(source)} but spec.peerAddress ` +
        `${spec.peerAddress} is IPv${peerFamily}: both must be the same family`,
    );
  }
  const v4 =
    source && familyOf(source) === 4 ? source.toString() : firstOfFamily(node.addresses, 4);
  const v6 =
    source && familyOf(source) === 6 ? source.toString() : firstOfFamily(node.addresses, 6);
  const families = (['ipv4', 'ipv6'] as const).filter(
    (f) => (f === 'ipv4' ? v4 : v6) !== undefined,
  );
  let md5Key: string | undefined;
  const ref = spec.passwordSecretRef;
  if (ref !== undefined) {
    const where = `${ref.namespace === undefined ? '' : `${ref.namespace}/`}${ref.name}`;
    if (secrets === undefined) {
      throw new BgpConfigError(
        name,
        `spec.passwordSecretRef: Secrets cannot be read here (${where})`,
      );
    }
    try {
      md5Key = secrets(ref);
    } catch (e) {
      if (!(e instanceof SecretLookupError)) throw e;
      throw new BgpConfigError(
        name,
        `spec.passwordSecretRef: ${e.message}; the session is not started without its MD5 password`,
      );
    }
    if (md5Key === undefined || md5Key === '') {
      throw new BgpConfigError(
        name,
        `spec.passwordSecretRef: Secret ${where} has no key '${ref.key}' (or it is empty); ` +
          'the session is not started without its MD5 password',
      );
    }
    if (Buffer.byteLength(md5Key) > 80) {
      throw new BgpConfigError(
        name,
        'the MD5 password is longer than 80 bytes (TCP_MD5SIG_MAXKEYLEN)',
      );
    }
  }
  const internal = spec.localASN === spec.peerASN;
  const options: PeerPlan['options'] = {
    localAs: spec.localASN,
    peerAs: spec.peerASN,
    routerId,
    peerAddress: spec.peerAddress,
    peerPort: spec.port,
    ...(source === undefined ? {} : { localAddress: source.toString() }),
    holdTime: spec.holdTime,
    ...(spec.keepaliveTime === undefined ? {} : { keepaliveTime: spec.keepaliveTime }),
    passive: spec.passive,
    families,
    nextHops: {
      ...(v4 === undefined ? {} : { ipv4: v4 }),
      ...(v6 === undefined ? {} : { ipv6: v6 }),
    },
    connectRetryMs: spec.connectRetryTime * 1000,
    ...defaults,
  };
  const plan: PeerPlan = {
    name,
    peerName: name,
    key: '',
    options,
    ttl: internal || spec.ebgpMultiHop ? 255 : 1,
    ...(md5Key === undefined ? {} : { md5Key }),
    ...(spec.gracefulRestart === undefined ? {} : { gracefulRestart: spec.gracefulRestart }),
    ...(spec.bfd === undefined ? {} : { bfd: spec.bfd }),
  };
  // The key is compared, never shown; still, it holds a digest of the
  // password rather than the password, so no dump of a plan reveals it.
  const md5Digest =
    md5Key === undefined ? undefined : createHash('sha256').update(md5Key).digest('hex');
  plan.key = JSON.stringify({ ...plan, key: undefined, md5Key: md5Digest });
  return plan;
}

/** The advertisements that pass validation, and a message for each that does not. */
export function validAdvertisements(raw: readonly unknown[]): {
  advertisements: BGPAdvertisement[];
  problems: string[];
} {
  const advertisements: BGPAdvertisement[] = [];
  const problems: string[] = [];
  for (const a of raw) {
    const r = bgpAdvertisementSchema.safeParse(a);
    if (r.success) advertisements.push(r.data);
    else {
      const name = (a as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
      problems.push(
        new InvalidResourceError(
          'BGPAdvertisement',
          typeof name === 'string' ? name : undefined,
          fieldIssues(r.error),
        ).message,
      );
    }
  }
  return { advertisements, problems };
}

/** Pools as address ranges, to find which pool an LB IP came from. */
export interface PoolIndex {
  poolOf(address: string): string | undefined;
}

export function indexPools(pools: readonly IPPool[]): PoolIndex {
  const ranges: { name: string; block: AddressBlock }[] = [];
  for (const pool of pools) {
    for (const text of pool.spec.addresses) {
      try {
        ranges.push({ name: pool.metadata.name, block: parseAddressBlock(text) });
      } catch {
        // An invalid pool gives out no addresses; ipam reports it.
      }
    }
  }
  return {
    poolOf(address) {
      const ip = parseIP(address);
      if (ip === undefined) return undefined;
      const family = familyOf(ip);
      const n = addressToBigInt(ip);
      return ranges.find(
        (r) => r.block.family === family && r.block.first <= n && n <= r.block.last,
      )?.name;
    },
  };
}

/**
 * Bytes per second of link bandwidth per local endpoint. Routers split
 * traffic in proportion to the values, so only the ratio matters; a whole
 * number of megabytes stays exact in the community's 32-bit float.
 */
export const LINK_BANDWIDTH_PER_ENDPOINT = 1_000_000;

/** One LB IP this node should announce, merged over the Services sharing it. */
export interface WantedAddress {
  address: string;
  family: 4 | 6;
  /** Local endpoints under externalTrafficPolicy Local; undefined under Cluster. */
  localEndpoints: number | undefined;
}

/** The model's announcements -> the addresses to announce (any Service wanting it suffices). */
export function wantedAddresses(announcements: readonly Announcement[]): WantedAddress[] {
  const byAddress = new Map<string, WantedAddress>();
  for (const a of announcements) {
    if (!a.announce) continue;
    const ip = parseIP(a.address);
    if (ip === undefined) continue;
    const address = ip.toString();
    const local = a.reason === 'localEndpoints' ? a.weight : undefined;
    const prev = byAddress.get(address);
    if (prev === undefined) {
      byAddress.set(address, { address, family: familyOf(ip), localEndpoints: local });
    } else if (prev.localEndpoints !== undefined) {
      // A Cluster Service sharing the address makes every node equal.
      prev.localEndpoints = local === undefined ? undefined : Math.max(prev.localEndpoints, local);
    }
  }
  return [...byAddress.values()].sort((x, y) =>
    x.address < y.address ? -1 : x.address > y.address ? 1 : 0,
  );
}

function selects(ad: BGPAdvertisement, pool: string | undefined, peer: string): boolean {
  if (ad.spec.peers !== undefined && !ad.spec.peers.includes(peer)) return false;
  if (ad.spec.ipPools === undefined) return true;
  return pool !== undefined && ad.spec.ipPools.includes(pool);
}

/**
 * The routes one peer should hold: each wanted address that an advertisement
 * selects (by pool and peer), with the union of their communities and the
 * highest local preference, and for Local Services the link bandwidth.
 */
export function routesForPeer(
  peer: string,
  wanted: readonly WantedAddress[],
  advertisements: readonly BGPAdvertisement[],
  pools: PoolIndex,
): Route[] {
  const routes: Route[] = [];
  for (const w of wanted) {
    const pool = pools.poolOf(w.address);
    const ads = advertisements.filter((ad) => selects(ad, pool, peer));
    if (ads.length === 0) continue;
    const communities = [...new Set(ads.flatMap((ad) => ad.spec.communities))].sort();
    const large = [...new Set(ads.flatMap((ad) => ad.spec.largeCommunities))].sort();
    const prefs = ads.flatMap((ad) =>
      ad.spec.localPreference === undefined ? [] : [ad.spec.localPreference],
    );
    const attributes: RouteAttributes = {
      ...(communities.length > 0 ? { communities } : {}),
      ...(large.length > 0 ? { largeCommunities: large } : {}),
      ...(prefs.length > 0 ? { localPref: Math.max(...prefs) } : {}),
      ...(w.localEndpoints === undefined
        ? {}
        : { linkBandwidth: w.localEndpoints * LINK_BANDWIDTH_PER_ENDPOINT }),
    };
    routes.push({ prefix: `${w.address}/${w.family === 4 ? 32 : 128}`, attributes });
  }
  return routes;
}
