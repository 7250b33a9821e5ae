// A router fed by several xlb nodes, for ECMP interop tests at the session
// level: one router namespace and one namespace per node, each node on its
// own veth to the router (a /30 and a /64 of its own), so every node's path
// arrives from a different neighbor with a different next hop.
//
//   router  n<i> 198.51.100.<4i+1>/30  2001:db8:e<i>::1/64
//             |  veth
//   node<i> up0  198.51.100.<4i+2>/30  2001:db8:e<i>::2/64
//
// All nodes share one AS, so their AS paths are equal and the router may
// merge their paths.
import type net from 'node:net';

import type { Logger } from 'pino';

import { BgpSession, type SessionOptions } from '../../../control/bgp/session.js';
import { inNs } from '../../../control/topology/ip.js';
import { Topology } from '../../../control/topology/topology.js';
import { connectTcp, inNetns } from '../../../native/index.js';

export const ROUTER_AS = 64512;
export const NODE_AS = 64513;

export interface EcmpNode {
  /** The node's namespace. */
  ns: string;
  /** The node's own addresses (its next hops). */
  v4: string;
  v6: string;
  /** The router's addresses on this node's link (the node's peer). */
  routerV4: string;
  routerV6: string;
}

/** A route in a namespace's kernel table, as `ip -j route show` reports it. */
export interface KernelRoute {
  /** Who installed it ('bgp' for zebra's BGP routes). */
  protocol: string | undefined;
  /** Its next hops' gateways, sorted. */
  nextHops: string[];
}

/** The kernel's routes for exactly prefix in ns (none when it has no such route). */
export function kernelRoutes(ns: string, prefix: string): KernelRoute[] {
  const family = prefix.includes(':') ? '-6' : '-4';
  const out = inNs(ns, 'ip', family, '-j', 'route', 'show', 'exact', prefix).trim();
  const routes = JSON.parse(out === '' ? '[]' : out) as {
    protocol?: string;
    gateway?: string;
    nexthops?: { gateway?: string }[];
  }[];
  return routes.map((r) => ({
    protocol: r.protocol,
    nextHops: (r.nexthops ? r.nexthops.map((n) => n.gateway) : [r.gateway])
      .map((g) => g ?? '(no gateway)')
      .sort(),
  }));
}

/** The next hops of the kernel's route for prefix in ns, sorted; empty when there is none. */
export function kernelNextHops(ns: string, prefix: string): string[] {
  return kernelRoutes(ns, prefix).flatMap((r) => r.nextHops);
}

export class EcmpBed {
  readonly routerNs: string;
  readonly nodes: readonly EcmpNode[];

  private constructor(
    readonly topo: Topology,
    count: number,
  ) {
    this.routerNs = topo.addNamespace('router');
    const nodes: EcmpNode[] = [];
    for (let i = 0; i < count; i++) {
      const node: EcmpNode = {
        ns: topo.addNamespace(`node${i}`),
        v4: `198.51.100.${4 * i + 2}`,
        v6: `2001:db8:e${i}::2`,
        routerV4: `198.51.100.${4 * i + 1}`,
        routerV6: `2001:db8:e${i}::1`,
      };
      topo.addVeth(
        {
          ns: this.routerNs,
          ifname: `n${i}`,
          addresses: [`${node.routerV4}/30`, `${node.routerV6}/64`],
        },
        { ns: node.ns, ifname: 'up0', addresses: [`${node.v4}/30`, `${node.v6}/64`] },
      );
      nodes.push(node);
    }
    this.nodes = nodes;
  }

  /** Builds the router and count nodes (at most 16); on a failure half-way, removes what it built and throws. */
  static build(count = 3): EcmpBed {
    if (!Number.isInteger(count) || count < 1 || count > 16)
      throw new RangeError(`an ECMP bed has 1..16 nodes, not ${count}`);
    const topo = new Topology('xlbt-ecmp');
    try {
      return new EcmpBed(topo, count);
    } catch (e) {
      topo.destroy();
      throw e;
    }
  }

  /**
   * xlb's session from node to the router: AS NODE_AS to ROUTER_AS, the
   * node's own addresses as router id and next hops, sockets made inside the
   * node's namespace (each one pushed to sockets).
   */
  session(
    node: EcmpNode,
    log: Logger,
    extra: Partial<SessionOptions> = {},
    sockets: net.Socket[] = [],
  ): BgpSession {
    return new BgpSession({
      localAs: NODE_AS,
      peerAs: ROUTER_AS,
      routerId: node.v4,
      peerAddress: node.routerV4,
      holdTime: 9,
      nextHops: { ipv4: node.v4, ipv6: node.v6 },
      backoff: { initialMs: 100, maxMs: 1000 },
      connect: ({ host, port, md5Password, ttl, minTtl }) => {
        const socket = inNetns(node.ns, () =>
          connectTcp({
            host,
            port,
            ...(md5Password === undefined ? {} : { md5Key: md5Password }),
            ...(ttl === undefined ? {} : { ttl }),
            ...(minTtl === undefined ? {} : { minTtl }),
          }),
        );
        sockets.push(socket);
        return socket;
      },
      log,
      ...extra,
    });
  }

  /** The router's kernel routes for prefix. */
  routerRoutes(prefix: string): KernelRoute[] {
    return kernelRoutes(this.routerNs, prefix);
  }

  /** The next hops of the router's kernel route for prefix, sorted. */
  routerNextHops(prefix: string): string[] {
    return kernelNextHops(this.routerNs, prefix);
  }

  destroy(): void {
    this.topo.destroy();
  }
}
