// xlb_xdp on the receiving end of a veth, driven by the live-frames
// generator (bench/pktgen/veth-bench.ts), next to the baseline receivers in
// the same topology and run, everything on one core:
//
//   gen ns         dut ns (the node)                     sink ns
//   eth0 ──────── eth0 [xlb_xdp | bench_*]
//                 eth1 ──────────────────────────────── eth0 [bench_drop]
//                   another node (REMOTE_NODE_IPV6) behind eth1, neighbour permanent
//
// - encapsulate: TCP/IPv6 to a VIP whose backend runs on another node: xlb
//   wraps it in IPv6 and redirects it into eth1 (ENCAP_REDIRECT), against
//   bench_redirect into the same eth1.
// - local: TCP/IPv4 to a VIP with a backend on this node: DNAT and XDP_PASS;
// - not a VIP: TCP/IPv4 passed untouched;
//   both against bench_pass on the same frames. The frames' destination MAC
//   is not the dut's, so the dut's stack drops them in ip_rcv (other host)
//   after building an skb and running GRO: that is what bounds all three.
//
// Why these frames: in live-frames mode the generator's page pool hands out
// each page fresh once per run; after that a recycled page keeps whatever
// the receiver (and the stack behind it) wrote into it, and bpf/pktgen.c
// only rewrites the source port. A receiver that rewrites the frame would
// see its own output again and take another path (a DNAT to a pod makes the
// next use of the page "not a VIP"; IPIP encapsulation writes its outer
// header over the old Ethernet header; kernel forwarding decrements the TTL).
// So every live path here is a fixed point of what xlb writes:
//   - encapsulation over IPv6: the last 14 bytes of the 40-byte outer header
//     land on the original Ethernet header, the inner packet is untouched,
//     and the remote node's address ends in 86dd, so the recycled frame is
//     the original IPv6 packet again (only the MACs differ, which XDP on a
//     veth does not look at);
//   - the local backend is the VIP's own address and port, so the DNAT writes
//     the same bytes;
//   - nothing is forwarded by the dut's kernel.
// IPv4 IPIP cannot be made a fixed point within the documentation ranges
// (the node address would have to end in .8.0); its cost per packet is in
// the test-run half of the benchmark.
//
// Rates come from the receiver's own counters: for xlb the sum of its
// xlb_outcomes and xlb_drops slots (DatapathReceiver). Every measured xlb run
// is checked: each frame it processed took the intended outcome, with a
// connection-table hit where one is meant.
import type { Datapath } from '../../control/datapath/load.js';
import { loadDatapath } from '../../control/datapath/load.js';
import { ip, run } from '../../control/topology/ip.js';
import { BaselineReceiver, type Receiver } from '../pktgen/baselines.js';
import { type Measurement, type Traffic, VethBench } from '../pktgen/veth-bench.js';
import {
  configureDatapath,
  datapathSettings,
  NOT_A_VIP,
  REMOTE_NODE_IPV6,
  REMOTE_NODE_IPV6_NET,
  tcpFrame,
  VIP_REMOTE_IPV6,
  VIP_SELF,
} from './plan.js';
import { median } from './testrun.js';
import {
  checkPath,
  delta,
  finished,
  snapshot,
  WrongPathError,
  type PathExpectation,
} from './verify.js';

/** xlb's XDP program as a veth-bench receiver: processed = every outcome and drop it counted. */
export class DatapathReceiver implements Receiver {
  constructor(readonly dp: Datapath) {}

  get program(): Datapath['xdp'] {
    return this.dp.xdp;
  }

  processed(): number {
    return finished(snapshot(this.dp));
  }
}

function macOf(ns: string, ifname: string): string {
  const [link] = JSON.parse(ip('-n', ns, '-j', 'link', 'show', 'dev', ifname)) as Array<{
    address: string;
  }>;
  if (!link) throw new Error(`no ${ns}/${ifname}`);
  return link.address;
}

/**
 * Makes the dut a node that can reach REMOTE_NODE_IPV6 through eth1. IPv6
 * comes back on only on the dut's two links, without link-local addresses,
 * and forwarding only on eth0 (bpf_fib_lookup wants it on the ingress
 * device), so the dut sends nothing on its own towards the sink, whose
 * count must equal what xlb redirected.
 */
function configureDut(bench: VethBench): void {
  const ns = bench.dut;
  const sysctl = (...settings: string[]): void => {
    run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);
  };
  for (const ifname of [bench.dutIn, bench.dutOut]) {
    sysctl(`net.ipv6.conf.${ifname}.addr_gen_mode=1`, `net.ipv6.conf.${ifname}.accept_ra=0`);
    sysctl(`net.ipv6.conf.${ifname}.disable_ipv6=0`);
  }
  sysctl(`net.ipv6.conf.${bench.dutIn}.forwarding=1`);
  ip('-n', ns, '-6', 'route', 'add', REMOTE_NODE_IPV6_NET, 'dev', bench.dutOut);
  ip(
    '-n',
    ns,
    '-6',
    'neigh',
    'replace',
    REMOTE_NODE_IPV6,
    'lladdr',
    macOf(bench.sink, bench.sinkIf),
    'dev',
    bench.dutOut,
    'nud',
    'permanent',
  );
}

export type LiveKey = 'redirect' | 'encap' | 'pass' | 'local' | 'notVip';

export interface LiveOptions {
  /** Frames per measured run of the XDP-only paths (redirect). */
  packets: number;
  /** Frames per measured run of the paths that enter the dut's stack (pass). */
  passPackets: number;
  rounds: number;
  /** Distinct flows (source ports) the generator cycles through. */
  flows: number;
  /** Per-run limit, seconds. */
  timeLimitSeconds: number;
  prefix?: string;
  /** Only these paths; default all. */
  only?: LiveKey[];
  /** Replaces a path's frame (for tests: a frame that takes another path). */
  frames?: Partial<Record<LiveKey, Buffer>>;
}

interface LivePath {
  key: LiveKey;
  receiver: Receiver;
  frame: Buffer;
  packets: number;
  /** xlb paths: what every processed frame must show. Baselines: undefined. */
  expect?: PathExpectation;
  /** Every processed frame must reach the sink (an XDP redirect into eth1). */
  sinkGetsAll: boolean;
}

export interface LiveResult {
  /** Median Mpps over rounds by path, and the runs themselves. */
  paths: Map<LiveKey, { mpps: number; runs: Measurement[]; cacheHitShare?: number }>;
  flows: number;
}

/** Runs every path `rounds` times, alternating, after one warm-up run each; all runs checked. */
export function measureLive(o: LiveOptions): LiveResult {
  using bench = VethBench.create({ prefix: o.prefix ?? 'xlbl' });
  configureDut(bench);
  using dp = loadDatapath(datapathSettings);
  configureDatapath(dp);
  const xlb = new DatapathReceiver(dp);
  using redirect = BaselineReceiver.load('redirect', { redirectIfindex: bench.dutOutIfindex });
  using pass = BaselineReceiver.load('pass');

  const encapFrame = tcpFrame(VIP_REMOTE_IPV6);
  const localFrame = tcpFrame(VIP_SELF);
  const notVipFrame = tcpFrame(NOT_A_VIP);
  // With many flows some share a flow cache slot and take the full path.
  const hit = { oneOf: ['FLOW_CACHE_HIT', 'CONNTRACK_HIT'] } as const;
  const all: LivePath[] = [
    {
      key: 'redirect',
      receiver: redirect,
      frame: encapFrame,
      packets: o.packets,
      sinkGetsAll: true,
    },
    {
      key: 'encap',
      receiver: xlb,
      frame: encapFrame,
      packets: o.packets,
      sinkGetsAll: true,
      expect: { outcome: 'ENCAP_REDIRECT', ...hit },
    },
    { key: 'pass', receiver: pass, frame: notVipFrame, packets: o.passPackets, sinkGetsAll: false },
    {
      key: 'local',
      receiver: xlb,
      frame: localFrame,
      packets: o.passPackets,
      sinkGetsAll: false,
      expect: { outcome: 'LOCAL', ...hit },
    },
    {
      key: 'notVip',
      receiver: xlb,
      frame: notVipFrame,
      packets: o.passPackets,
      sinkGetsAll: false,
      expect: { outcome: 'PASS_NOT_VIP' },
    },
  ];
  const paths = all
    .filter((p) => !o.only || o.only.includes(p.key))
    .map((p) => ({ ...p, frame: o.frames?.[p.key] ?? p.frame }));

  const shares = new Map<LiveKey, number[]>();
  const measure = (p: LivePath, packets: number, warmup: boolean): Measurement => {
    const traffic: Traffic = {
      frame: p.frame,
      packets,
      flows: o.flows,
      timeLimitSeconds: o.timeLimitSeconds,
    };
    const before = snapshot(dp);
    const m = bench.measure(p.receiver, traffic);
    const what = `veth ${p.key}${warmup ? ' (warm-up)' : ''}`;
    if (m.processed === 0) throw new WrongPathError(`${what}: the receiver processed no frames`);
    // The warm-up carries each flow's first packet (a miss), so it is checked
    // for the outcome only.
    if (p.expect) {
      const expect = warmup ? { outcome: p.expect.outcome } : p.expect;
      const d = delta(before, snapshot(dp));
      if (warmup) d.events.clear();
      checkPath(what, d, m.processed, expect);
      if (!warmup && p.expect.oneOf) {
        const cached = Number(d.events.get('FLOW_CACHE_HIT') ?? 0n);
        shares.set(p.key, [...(shares.get(p.key) ?? []), cached / m.processed]);
      }
    }
    if (p.sinkGetsAll && m.sinkReceived !== m.processed) {
      throw new WrongPathError(
        `${what}: the sink saw ${m.sinkReceived} of ${m.processed} frames sent on to it`,
      );
    }
    return m;
  };

  // Warm-up: cold caches, page pools, and the flows' first packets.
  for (const p of paths) measure(p, Math.max(o.flows * 2, Math.min(p.packets, 100_000)), true);
  const runs = new Map<LiveKey, Measurement[]>(paths.map((p) => [p.key, []]));
  for (let r = 0; r < o.rounds; r++) {
    for (const p of paths) runs.get(p.key)!.push(measure(p, p.packets, false));
  }
  return {
    paths: new Map(
      paths.map((p) => {
        const ms = runs.get(p.key)!;
        const share = shares.get(p.key);
        return [
          p.key,
          {
            mpps: median(ms.map((m) => m.pps / 1e6)),
            runs: ms,
            ...(share ? { cacheHitShare: median(share) } : {}),
          },
        ];
      }),
    ),
    flows: o.flows,
  };
}
