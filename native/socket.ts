// Socket options Node's net module does not offer.
import net from 'node:net';

import ipaddr from 'ipaddr.js';

import { addon } from './addon.js';

const IPPROTO_IP = 0;
const IPPROTO_IPV6 = 41;
const IP_TTL = 2;
const IPV6_UNICAST_HOPS = 16;

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

/** The descriptor under a connected or listening net.Socket / net.Server (Linux). */
export function socketFd(handleOwner: net.Socket | net.Server): number {
  const fd = (handleOwner as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no descriptor (not open yet?)');
  return fd;
}

export interface TcpConnectOptions {
  host: string;
  port: number;
  /** TCP MD5 key shared with the peer (RFC 2385). */
  md5Key?: string | Buffer;
  /** IP TTL / hop limit of outgoing packets (255 for GTSM, RFC 5082). */
  ttl?: number;
}

/**
 * Connects a TCP socket whose MD5 key and TTL are set before the SYN leaves,
 * which net.connect() cannot do.
 */
export function connectTcp(options: TcpConnectOptions): net.Socket {
  const fam = family(options.host);
  const fd = addon().tcpSocket(fam);
  try {
    if (options.md5Key !== undefined) setTcpMd5(fd, options.host, options.md5Key);
    if (options.ttl !== undefined) {
      if (fam === 4) setSocketOption(fd, IPPROTO_IP, IP_TTL, options.ttl);
      else setSocketOption(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, options.ttl);
    }
  } catch (e) {
    addon().closeFd(fd);
    throw e;
  }
  const socket = new net.Socket({ fd, readable: true, writable: true });
  return socket.connect(options.port, options.host);
}
