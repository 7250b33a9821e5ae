// xlb's side of an interop test against a real peer across a BgpLink:
// AS 65002 to the peer's 65001, hold time 9 s, a short back-off, sockets made
// in xlb's namespace (with the MD5 key and TTLs the session asks for). The peer's runner and the checks differ per daemon.
import type net from 'node:net';

import type { Logger } from 'pino';

import { BgpSession, type SessionOptions } from '../../../control/bgp/session.js';
import type { Route } from '../../../control/bgp/routes.js';
import { PEER, XLB, type BgpLink } from './link.js';

export const XLB_AS = 65002;
export const PEER_AS = 65001;

/** One route per family, with the attributes every peer is checked for. */
export const INTEROP_ROUTES: Route[] = [
  {
    prefix: '203.0.113.10/32',
    attributes: { med: 20, communities: ['65002:100'], largeCommunities: ['65002:1:2'] },
  },
  { prefix: '2001:db8:ff::10/128', attributes: { communities: ['65002:200'] } },
];

/**
 * A session to the peer across link. Its sockets carry the MD5 key and TTLs
 * the session asks for; each one made is pushed to sockets, so a test can
 * cut the connection as a dying agent would (no NOTIFICATION).
 */
export function interopSession(
  link: BgpLink,
  log: Logger,
  extra: Partial<SessionOptions> = {},
  sockets: net.Socket[] = [],
): BgpSession {
  return new BgpSession({
    localAs: XLB_AS,
    peerAs: PEER_AS,
    routerId: XLB.v4,
    peerAddress: PEER.v4,
    holdTime: 9,
    nextHops: { ipv6: XLB.v6 },
    backoff: { initialMs: 100, maxMs: 1000 },
    connect: ({ host, port, md5Password, ttl, minTtl }) => {
      const socket = link.connect(host, port, {
        ...(md5Password === undefined ? {} : { md5Password }),
        ...(ttl === undefined ? {} : { ttl }),
        ...(minTtl === undefined ? {} : { minTtl }),
      });
      sockets.push(socket);
      return socket;
    },
    log,
    ...extra,
  });
}
