// The addresses, services and backends both halves of the datapath benchmark
// use, and the frames of each path. Documentation ranges only:
//
//   192.0.2.0/26      the node's uplink: node .1, gateway .62
//   192.0.2.64/26     pods on this node (local backends)
//   192.0.2.128/26    other nodes (remote backends' nodes), .129 = dut's eth1 in the veth bench
//   192.0.2.192/26    pods on other nodes
//   198.51.100.0/24   clients
//   203.0.113.0/24    VIPs; .99 is not a VIP
//   2001:db8:0:1::/64 node, 2001:db8:0:2::/64 local pods, 2001:db8:c::/64 clients,
//   2001:db8:10::/64  IPv6 VIPs, 2001:db8:0:3::/64 other nodes, 2001:db8:0:4::/64 their pods
import type { Datapath } from '../../control/datapath/load.js';
import { buildFrame, internetChecksum } from '../pktgen/frame.js';

export const NODE_IPV4 = '192.0.2.1';
export const NODE_IPV6 = '2001:db8:0:1::1';
export const GATEWAY_IPV4 = '192.0.2.62';
export const GATEWAY_IPV6 = '2001:db8:0:1::3e';
export const GATEWAY_MAC = '02:00:00:00:00:3e';
export const UPLINK_PREFIX = 26;
export const LOCAL_POD_NET = '192.0.2.64/26';
export const LOCAL_POD = '192.0.2.65';
export const LOCAL_POD_IPV6 = '2001:db8:0:2::1';
export const REMOTE_NODE_NET = '192.0.2.128/26';
export const REMOTE_NODE = '192.0.2.130';
export const REMOTE_POD = '192.0.2.193';
/**
 * Another node, over IPv6. Its address ends in 86dd on purpose: the live
 * bench (live.ts) needs encapsulation to leave the original frame's bytes as
 * they were, and the last 14 bytes of the outer IPv6 header land exactly on
 * the original Ethernet header, so its ethertype becomes this address's last
 * two bytes: 0x86dd again.
 */
export const REMOTE_NODE_IPV6 = '2001:db8:0:3::86dd';
export const REMOTE_NODE_IPV6_NET = '2001:db8:0:3::/64';
export const REMOTE_POD_IPV6 = '2001:db8:0:4::1';
export const CLIENT = '198.51.100.7';
export const CLIENT_IPV6 = '2001:db8:c::7';
/** Service 1: local backend (DNAT). */
export const VIP_LOCAL = '203.0.113.10';
/** Service 2: remote backend (IPIP to REMOTE_NODE). */
export const VIP_REMOTE = '203.0.113.20';
/** Service 3: local backend whose address and port are the VIP's own, so DNAT rewrites nothing. */
export const VIP_SELF = '203.0.113.30';
/** Service 4: IPv6, local backend. */
export const VIP_IPV6 = '2001:db8:10::10';
/** Service 5: IPv6, remote backend (IPv6-in-IPv6 to REMOTE_NODE_IPV6). */
export const VIP_REMOTE_IPV6 = '2001:db8:10::20';
export const NOT_A_VIP = '203.0.113.99';
export const PORT = 80;
export const POD_PORT = 8080;
export const CLIENT_PORT = 40000;
export const HASH_SEED = 0x5eed;
/** Maglev table size (a prime, as Maglev wants). */
export const MAGLEV_M = 251;

export const datapathSettings = {
  hashSeed: HASH_SEED,
  nodeIPv4: NODE_IPV4,
  nodeIPv6: NODE_IPV6,
  mtu: 1500,
  decap: true,
  icmpTooBig: true,
};

/** Fills the datapath's maps: five services, one backend each (every Maglev slot). */
export function configureDatapath(dp: Datapath): void {
  const m = dp.maps;
  const service = (
    id: number,
    vip: string,
    backend: { address: string; port: number; nodeAddress: string; local: boolean },
  ): void => {
    m.setBackend(id, { ...backend, state: 'active' });
    m.setVip(vip, 1);
    m.setFrontend({ vip, port: PORT, proto: 'TCP' }, { id });
    m.installMaglevTable(id, new Array<number>(MAGLEV_M).fill(id));
  };
  service(1, VIP_LOCAL, {
    address: LOCAL_POD,
    port: POD_PORT,
    nodeAddress: NODE_IPV4,
    local: true,
  });
  service(2, VIP_REMOTE, {
    address: REMOTE_POD,
    port: POD_PORT,
    nodeAddress: REMOTE_NODE,
    local: false,
  });
  service(3, VIP_SELF, { address: VIP_SELF, port: PORT, nodeAddress: NODE_IPV4, local: true });
  service(4, VIP_IPV6, {
    address: LOCAL_POD_IPV6,
    port: POD_PORT,
    nodeAddress: NODE_IPV6,
    local: true,
  });
  service(5, VIP_REMOTE_IPV6, {
    address: REMOTE_POD_IPV6,
    port: POD_PORT,
    nodeAddress: REMOTE_NODE_IPV6,
    local: false,
  });
}

export interface FrameOverrides {
  src?: string;
  sport?: number;
  dstMac?: string;
  srcMac?: string;
}

/** A 64-byte (IPv6: 78-byte, the least that holds the headers) TCP SYN from a client to `dst`:80. */
export function tcpFrame(dst: string, o: FrameOverrides = {}): Buffer {
  const v6 = dst.includes(':');
  return buildFrame({
    src: o.src ?? (v6 ? CLIENT_IPV6 : CLIENT),
    dst,
    sport: o.sport ?? CLIENT_PORT,
    dport: PORT,
    protocol: 'tcp',
    size: v6 ? 74 : 64,
    ...(o.dstMac ? { dstMac: o.dstMac } : {}),
    ...(o.srcMac ? { srcMac: o.srcMac } : {}),
  });
}

/** Flows missFrame() can tell apart: 60,000 source ports times 256 client addresses. */
export const MISS_FLOWS = 60000 * 256;

/** Client flow `i` of the miss path: a distinct source address and port per i. */
export function missFrame(i: number): Buffer {
  if (!Number.isInteger(i) || i < 0 || i >= MISS_FLOWS) {
    throw new RangeError(`miss flow ${i} is outside [0, ${MISS_FLOWS})`);
  }
  const port = 1024 + (i % 60000);
  const host = Math.floor(i / 60000);
  return tcpFrame(VIP_LOCAL, { src: `198.51.100.${host}`, sport: port });
}

/**
 * `inner` (an Ethernet frame with an IPv4 packet) wrapped in IPIP from
 * `outerSrc` to `outerDst`: what another node's xlb sends to this one.
 */
export function ipipFrame(inner: Buffer, outerSrc: string, outerDst: string): Buffer {
  if (inner.readUInt16BE(12) !== 0x0800) throw new RangeError('IPIP needs an IPv4 inner packet');
  const packet = inner.subarray(14);
  const outer = Buffer.alloc(20);
  outer[0] = 0x45;
  outer.writeUInt16BE(20 + packet.length, 2);
  outer.writeUInt16BE(0x4000, 6);
  outer[8] = 64;
  outer[9] = 4; // IPPROTO_IPIP
  Buffer.from(outerSrc.split('.').map(Number)).copy(outer, 12);
  Buffer.from(outerDst.split('.').map(Number)).copy(outer, 16);
  outer.writeUInt16BE(internetChecksum(outer), 10);
  return Buffer.concat([inner.subarray(0, 14), outer, packet]);
}

/** struct xdp_md for a test run: data_end = frame length, the ingress interface set. */
export function xdpContext(frameLength: number, ingressIfindex: number): Buffer {
  const ctx = Buffer.alloc(24);
  ctx.writeUInt32LE(frameLength, 4);
  ctx.writeUInt32LE(ingressIfindex, 12);
  return ctx;
}
