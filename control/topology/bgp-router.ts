// The top-of-rack router of the agent topology as BGP sees it: BIRD in the
// router namespace peering with every node (exporting what it learns to the
// router's kernel, merging equal paths into ECMP routes), and the manifests
// that make the agents peer with it and announce the pool's addresses.
import { stringify } from 'yaml';

import { BED, nodeAddresses } from './cluster.js';
import { documents } from './manifests.js';

export const ROUTER_AS = 64512;
export const NODE_AS = 64513;

/** BIRD's name for its session with node i. */
export const birdProtocol = (i: number): string => `node${i}`;

/** BFD timers for the router's sessions (RFC 5880: detection after interval x multiplier). */
export interface BfdTimers {
  intervalMs: number;
  multiplier: number;
}

/**
 * BIRD's configuration for `nodes` nodes. The kernel protocol exports every
 * change at once, so the router's FIB follows BIRD's table without a scan.
 * With `bfd`, every session is also watched by BFD, so a dead node's routes
 * go in under a second instead of after the hold time; with `md5Password`,
 * every session is signed with TCP MD5 (RFC 2385); with `gracefulRestart`,
 * BIRD keeps a node's routes while its agent restarts (RFC 4724).
 */
export function birdRouterConfig(
  nodes = 1,
  options: { bfd?: BfdTimers; md5Password?: string; gracefulRestart?: boolean } = {},
): string {
  const { bfd, md5Password, gracefulRestart } = options;
  return [
    `router id ${BED.router.nodeV4};`,
    'protocol device {}',
    'protocol kernel { ipv4 { export all; }; merge paths yes; }',
    ...(bfd
      ? [
          `protocol bfd {
  interface "node*" {
    min rx interval ${bfd.intervalMs} ms;
    min tx interval ${bfd.intervalMs} ms;
    multiplier ${bfd.multiplier};
  };
}`,
        ]
      : []),
    ...Array.from({ length: nodes }, (_, i) => {
      const a = nodeAddresses(i);
      return `protocol bgp ${birdProtocol(i)} {
  local ${a.routerV4} as ${ROUTER_AS};
  neighbor ${a.v4} as ${NODE_AS};
${bfd ? '  bfd on;\n  # A node that comes back is retried soon, not in 60 s.\n  error wait time 1, 2;\n' : ''}${md5Password === undefined ? '' : `  password "${md5Password}";\n`}${gracefulRestart ? '  graceful restart on;\n' : ''}  ipv4 { import all; export none; };
}`;
    }),
    '',
  ].join('\n');
}

/**
 * The IPPool `public` (the topology's VIP range), the BGPPeer `tor` (node
 * i's side of the router, with `peer` merged into its spec) and a
 * BGPAdvertisement of the pool.
 */
export function bgpManifests(
  node = 0,
  advertisement: { communities?: string[] } = {},
  peer: Record<string, unknown> = {},
): string {
  return documents(
    stringify({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'IPPool',
      metadata: { name: 'public' },
      spec: { addresses: [BED.vipRangeV4], avoidBuggyIPs: false },
    }),
    stringify({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'BGPPeer',
      metadata: { name: 'tor' },
      spec: {
        peerAddress: nodeAddresses(node).routerV4,
        peerASN: ROUTER_AS,
        localASN: NODE_AS,
        holdTime: 9,
        connectRetryTime: 1,
        ...peer,
      },
    }),
    stringify({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'BGPAdvertisement',
      metadata: { name: 'public' },
      spec: { ipPools: ['public'], ...advertisement },
    }),
  );
}
