// Socket hardening of a BGP session: the TCP MD5 key (RFC 2385), the TTL
// our packets leave with and the lowest TTL we accept (GTSM, RFC 5082; eBGP
// multihop). What to set is worked out here from the session's options; the
// system calls are native/socket.ts's.
import type net from 'node:net';

import { getSocketTtl, setSocketTtl, setTcpMd5, socketFd } from '../../native/socket.js';

export interface TransportOptions {
  /** TCP MD5 password shared with the peer (at most 80 bytes). */
  md5Password?: string;
  /** GTSM: send with TTL 255 and refuse packets that arrive with less (a directly connected peer). */
  ttlSecurity?: boolean;
  /** TTL of our packets for an eBGP peer that is this many hops away. */
  multihopTtl?: number;
}

/** The TTLs a session's sockets get; undefined leaves the kernel's default. */
export interface SocketTtls {
  ttl?: number;
  minTtl?: number;
}

export class TransportConfigError extends Error {
  override readonly name = 'TransportConfigError';
}

/** RFC 5082: a directly connected peer's packets arrive with exactly 255. */
export const GTSM_TTL = 255;
const MD5_MAX_KEY_BYTES = 80;

/** Checks the options and works out the TTLs; throws TransportConfigError naming the field. */
export function socketTtls(o: TransportOptions): SocketTtls {
  if (o.md5Password !== undefined) {
    const bytes = Buffer.byteLength(o.md5Password, 'utf8');
    if (bytes === 0 || bytes > MD5_MAX_KEY_BYTES) {
      throw new TransportConfigError(
        `md5Password has ${bytes} bytes: the kernel takes 1..${MD5_MAX_KEY_BYTES}`,
      );
    }
  }
  const hops = o.multihopTtl;
  if (hops !== undefined && (!Number.isInteger(hops) || hops < 1 || hops > 255)) {
    throw new TransportConfigError(`multihopTtl ${hops} is not an integer in 1..255`);
  }
  if (o.ttlSecurity) {
    // GTSM for a peer `hops` away: everything leaves with 255, and a packet that
    // crossed more routers than that (or was sent from further) is dropped.
    return { ttl: GTSM_TTL, minTtl: GTSM_TTL + 1 - (hops ?? 1) };
  }
  return hops === undefined ? {} : { ttl: hops };
}

function familyOf(socket: net.Socket): 4 | 6 {
  const a = socket.localAddress ?? socket.remoteAddress ?? '';
  return a.includes(':') ? 6 : 4;
}

/**
 * Sets the TTLs on a connected or accepted socket (a connection accepted by
 * a listener shared with other peers cannot have them from the listener).
 */
export function applySocketTtls(socket: net.Socket, ttls: SocketTtls): void {
  if (ttls.ttl === undefined && ttls.minTtl === undefined) return;
  setSocketTtl(socketFd(socket), familyOf(socket), ttls);
}

/**
 * The TTLs a socket has now, as the kernel reports them (for checks and
 * tests). For an IPv4 peer on an IPv6 socket, the IPv4 options: those are
 * the ones its packets use.
 */
export function readSocketTtls(socket: net.Socket): { ttl: number; minTtl: number } {
  const mapped = socket.remoteAddress?.startsWith('::ffff:') && socket.remoteAddress.includes('.');
  return getSocketTtl(socketFd(socket), mapped ? 4 : familyOf(socket));
}

/** Drops incoming packets (SYNs included) below minTtl on a listening server. */
export function applyServerMinTtl(server: net.Server, minTtl: number): void {
  const a = server.address();
  const fam = typeof a === 'object' && a !== null && a.family === 'IPv6' ? 6 : 4;
  setSocketTtl(socketFd(server), fam, { minTtl });
}

/**
 * Gives a listening server the MD5 key for one peer (the kernel hands it to
 * the connections it accepts from that address); undefined removes it.
 */
export function setListenerMd5(
  server: net.Server,
  peer: string,
  password: string | undefined,
): void {
  setTcpMd5(socketFd(server), peer, password ?? '');
}

/** What a connection attempt that nobody answered most likely means. */
export function unansweredHint(o: TransportOptions): string {
  const hints: string[] = [];
  if (o.md5Password !== undefined) {
    hints.push(
      "TCP MD5 is on: a password that differs from the peer's (or a peer without one) makes the kernel drop the packets silently; check the password on both sides",
    );
  }
  if (o.ttlSecurity) {
    hints.push(
      'TTL security (GTSM) is on: the peer must send with TTL 255 and be directly connected',
    );
  }
  return hints.join('; ');
}
