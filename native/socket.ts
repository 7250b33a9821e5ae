// Socket options Node's net and dgram modules do not offer.
import type dgram from 'node:dgram';
import net from 'node:net';

import ipaddr from 'ipaddr.js';

import { addon } from './addon.js';

const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const IP_TTL = 2;
const IP_MINTTL = 21;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MINHOPCOUNT = 73;

function family(address: string): 4 | 6 {
  return ipaddr.parse(address).kind() === 'ipv4' ? 4 : 6;
}

/**
 * Sets the RFC 2385 TCP MD5 key for peer on a socket (a listening socket
 * hands it to the connections it accepts). An empty key removes it. With
 * prefixLen, the key covers every peer in that prefix.
 */
export function setTcpMd5(
  socketFd: number,
  peer: string,
  key: string | Buffer,
  prefixLen?: number,
): void {
  const addr = ipaddr.parse(peer);
  const keyBytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  addon().tcpMd5(socketFd, family(peer), Buffer.from(addr.toByteArray()), keyBytes, prefixLen);
}

export function setSocketOption(
  socketFd: number,
  level: number,
  name: number,
  value: number,
): void {
  addon().setSockOptInt(socketFd, level, name, value);
}

/** Reads an integer socket option back (getsockopt). */
export function getSocketOption(socketFd: number, level: number, name: number): number {
  return addon().getSockOptInt(socketFd, level, name);
}

/** The TTL (hop limit) and minimum TTL (minimum hop count) of a socket. */
export interface TtlOptions {
  /** IP TTL / hop limit of outgoing packets (255 for GTSM, RFC 5082). */
  ttl?: number;
  /** Drop incoming packets with a lower TTL / hop limit (IP_MINTTL / IPV6_MINHOPCOUNT). */
  minTtl?: number;
}

function checkTtl(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > 255)) {
    throw new RangeError(`${name} ${v} is not an integer in ${min}..255`);
  }
}

/**
 * Sets the TTL and minimum TTL of a socket of the given address family. An
 * IPv6 socket carrying IPv4-mapped traffic gets both the IPv4 and the IPv6
 * options, because the kernel reads the IPv4 ones for such packets.
 */
export function setSocketTtl(socketFd: number, fam: 4 | 6, options: TtlOptions): void {
  checkTtl('TTL', options.ttl, 1);
  checkTtl('minimum TTL', options.minTtl, 0);
  if (options.ttl !== undefined) {
    setSocketOption(socketFd, IPPROTO_IP, IP_TTL, options.ttl);
    if (fam === 6) setSocketOption(socketFd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, options.ttl);
  }
  if (options.minTtl !== undefined) {
    setSocketOption(socketFd, IPPROTO_IP, IP_MINTTL, options.minTtl);
    if (fam === 6) setSocketOption(socketFd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, options.minTtl);
  }
}

/** The TTL and minimum TTL a socket has now, as the kernel reports them. */
export function getSocketTtl(socketFd: number, fam: 4 | 6): { ttl: number; minTtl: number } {
  return fam === 4
    ? {
        ttl: getSocketOption(socketFd, IPPROTO_IP, IP_TTL),
        minTtl: getSocketOption(socketFd, IPPROTO_IP, IP_MINTTL),
      }
    : {
        ttl: getSocketOption(socketFd, IPPROTO_IPV6, IPV6_UNICAST_HOPS),
        minTtl: getSocketOption(socketFd, IPPROTO_IPV6, IPV6_MINHOPCOUNT),
      };
}

/** The descriptor under a connected or listening net.Socket / net.Server (Linux). */
export function socketFd(handleOwner: net.Socket | net.Server): number {
  const fd = (handleOwner as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no descriptor (not open yet?)');
  return fd;
}

export interface TcpConnectOptions extends TtlOptions {
  host: string;
  port: number;
  /** Source address (bound before connecting). */
  localAddress?: string;
  /** TCP MD5 key shared with the peer (RFC 2385). */
  md5Key?: string | Buffer;
}

/**
 * Connects a TCP socket whose MD5 key and TTLs are set before the SYN leaves,
 * which net.connect() cannot do.
 */
export function connectTcp(options: TcpConnectOptions): net.Socket {
  const fam = family(options.host);
  const fd = addon().tcpSocket(fam);
  try {
    if (options.md5Key !== undefined) setTcpMd5(fd, options.host, options.md5Key);
    setSocketTtl(fd, fam, options);
  } catch (e) {
    addon().closeFd(fd);
    throw e;
  }
  const socket = new net.Socket({ fd, readable: true, writable: true });
  return socket.connect({
    port: options.port,
    host: options.host,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
  });
}

/**
 * The descriptor under a bound dgram.Socket (Linux). Node offers no public
 * way to it: it is the handle in the socket's internal state (the same on
 * Node 20 and 24), and this throws a plain error should that ever change.
 */
export function dgramSocketFd(socket: dgram.Socket): number {
  const state = Object.getOwnPropertySymbols(socket)
    .filter((s) => s.description === 'state symbol')
    .map((s) => (socket as unknown as Record<symbol, { handle?: { fd?: number } }>)[s])[0];
  const fd = state?.handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new Error('UDP socket has no descriptor (not bound yet?)');
  return fd;
}

/** One classic BPF instruction (struct sock_filter). */
export interface SocketFilterInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Classic BPF opcodes (linux/filter.h) and the offset that makes a load
// relative to the network header (SKF_NET_OFF), whatever the socket type.
const BPF_LDB_ABS = 0x30;
const BPF_RSH_K = 0x74;
const BPF_JEQ_K = 0x15;
const BPF_JGE_K = 0x35;
const BPF_RET_K = 0x06;
const SKF_NET_OFF = 0x100000;
const netOffset = (offset: number) => (offset - SKF_NET_OFF) >>> 0;

/**
 * A socket filter that keeps IPv4 packets whose TTL, and IPv6 packets whose
 * hop limit, is at least minTtl, and drops everything else (RFC 5881
 * section 5 and GTSM, RFC 5082, with 255). It reads the IP version from the
 * header itself, so it also serves IPv4-mapped traffic on an IPv6 socket.
 */
export function minTtlFilter(minTtl: number): SocketFilterInstruction[] {
  checkTtl('minimum TTL', minTtl, 0);
  const i = (code: number, k: number, jt = 0, jf = 0) => ({ code, jt, jf, k });
  return [
    i(BPF_LDB_ABS, netOffset(0)), // 0: version and IHL
    i(BPF_RSH_K, 4), // 1: version
    i(BPF_JEQ_K, 4, 0, 2), // 2: IPv4 -> 3, else -> 5
    i(BPF_LDB_ABS, netOffset(8)), // 3: IPv4 TTL
    i(BPF_JGE_K, minTtl, 4, 3), // 4: keep -> 9, drop -> 8
    i(BPF_JEQ_K, 6, 0, 2), // 5: IPv6 -> 6, else -> 8
    i(BPF_LDB_ABS, netOffset(7)), // 6: IPv6 hop limit
    i(BPF_JGE_K, minTtl, 1, 0), // 7: keep -> 9, drop -> 8
    i(BPF_RET_K, 0), // 8: drop
    i(BPF_RET_K, 0xffffffff), // 9: keep the whole packet
  ];
}

/** Attaches a classic BPF socket filter (SO_ATTACH_FILTER); it replaces any filter before it. */
export function attachSocketFilter(
  socketFd: number,
  program: readonly SocketFilterInstruction[],
): void {
  addon().attachSocketFilter(
    socketFd,
    program.map((p) => [p.code, p.jt, p.jf, p.k]),
  );
}

/**
 * How many packets the kernel dropped for this socket (SO_MEMINFO): those
 * its socket filter refused, and those that found the receive buffer full.
 */
export function socketDrops(socketFd: number): number {
  return addon().socketDrops(socketFd);
}
