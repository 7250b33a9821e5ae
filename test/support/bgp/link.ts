// Two network namespaces joined by one veth pair, for a BGP session between
// a real peer (BIRD, GoBGP, FRR) and xlb:
//
//   xlbt-bgp-<tag>-peer  bgp0 192.0.2.1/24 2001:db8:b::1/64  02:00:00:00:b0:01
//                          |  veth
//   xlbt-bgp-<tag>-xlb   bgp0 192.0.2.2/24 2001:db8:b::2/64  02:00:00:00:b0:02
import net from 'node:net';

import { Topology } from '../../../control/topology/topology.js';
import { connectTcp, inNetns } from '../../../native/index.js';

// Fixed MACs, so the link-local addresses (and a captured IPv6 next hop) are the same every run.
export const PEER = {
  v4: '192.0.2.1',
  v6: '2001:db8:b::1',
  mac: '02:00:00:00:b0:01',
  linkLocal: 'fe80::ff:fe00:b001',
} as const;
export const XLB = {
  v4: '192.0.2.2',
  v6: '2001:db8:b::2',
  mac: '02:00:00:00:b0:02',
  linkLocal: 'fe80::ff:fe00:b002',
} as const;

export class BgpLink {
  readonly peerNs: string;
  readonly xlbNs: string;

  private constructor(readonly topo: Topology) {
    this.peerNs = topo.addNamespace('peer');
    this.xlbNs = topo.addNamespace('xlb');
    topo.addVeth(
      {
        ns: this.peerNs,
        ifname: 'bgp0',
        mac: PEER.mac,
        addresses: [`${PEER.v4}/24`, `${PEER.v6}/64`],
      },
      { ns: this.xlbNs, ifname: 'bgp0', mac: XLB.mac, addresses: [`${XLB.v4}/24`, `${XLB.v6}/64`] },
    );
  }

  /** Builds the pair; on a failure half-way, removes what it built and throws. */
  static build(): BgpLink {
    const topo = new Topology('xlbt-bgp');
    try {
      return new BgpLink(topo);
    } catch (e) {
      topo.destroy();
      throw e;
    }
  }

  /**
   * A listening server inside xlb's namespace. A socket belongs to the
   * namespace it was created in; listen() without a host creates and binds
   * it synchronously, so it is made while this thread is in the namespace.
   */
  listen(port: number): net.Server {
    const server = net.createServer();
    inNetns(this.xlbNs, () => server.listen({ port }));
    if (!server.listening) {
      server.close();
      throw new Error('the server did not bind synchronously inside the namespace');
    }
    return server;
  }

  /**
   * A TCP connection from xlb's namespace (the socket is created inside it),
   * with the MD5 key and TTLs a session asks for.
   */
  connect(
    host: string,
    port: number,
    hardening: { md5Password?: string; ttl?: number; minTtl?: number } = {},
  ): net.Socket {
    const { md5Password, ...ttls } = hardening;
    return inNetns(this.xlbNs, () =>
      connectTcp({
        host,
        port,
        ...ttls,
        ...(md5Password === undefined ? {} : { md5Key: md5Password }),
      }),
    );
  }

  destroy(): void {
    this.topo.destroy();
  }
}
