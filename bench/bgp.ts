// `npm run bench -- bgp` (issue 6): how fast the router learns and forgets a
// VIP, and how fast BFD notices a dead node.
//
// 1. Allocation -> route: the real `xlb agent` in Kubernetes mode against the
//    API server double, BIRD in a router namespace. Each round creates a
//    LoadBalancer Service with no address (its EndpointSlice already there);
//    the agent, as leader, allocates from the IPPool and writes status, sees
//    its own write, and announces. Timed from the create until `ip monitor
//    route` in the router namespace shows the /32.
// 2. Withdrawal: the Service's EndpointSlice emptied (the last endpoint gone)
//    until the router's kernel drops the /32. The slice is then refilled and
//    the route awaited again (also reported).
// 3. The same in standalone mode, where no allocation happens: from writing
//    the Service manifest with its address in status (through the agent's
//    50 ms manifest debounce) to the route.
// 4. BFD, as the router sees it: the agent and BIRD run BFD at 300 ms x 3;
//    the agent is frozen (a hung node) and the time until the router's kernel
//    drops its /32 is measured (bgp/dead-node.ts). And between two xlb BFD
//    sessions on loopback, the time until the survivor declares the session
//    down (our own detection, without a router's scheduling in it).
//
// XLB_BENCH_ROUNDS overrides the number of rounds (default 20, at most 100).
import { performance } from 'node:perf_hooks';

import { requireRoot } from '../control/system/privileges.js';
import { BgpBench, vipFor, type Mode } from './bgp/bed.js';
import { detectDeadPeer } from './bgp/bfd-detection.js';
import { deadNodeRounds } from './bgp/dead-node.js';
import { latencyFigures } from './bgp/stats.js';
import type { Figure, Target } from './results.js';

const ROUNDS = Number(process.env.XLB_BENCH_ROUNDS ?? 20);
const ROUTE_TIMEOUT_MS = 15_000;
const TARGET: Target = { op: '<=', value: 1000 };

interface RouteTimes {
  announce: number[];
  withdraw: number[];
  reannounce: number[];
}

// Lets the agent take in the EndpointSlice before the Service it belongs to
// is created, so the announcement time is not the slice's processing.
const SLICE_SETTLE_MS = 100;

async function routeRounds(mode: Mode): Promise<RouteTimes> {
  const b = await BgpBench.create(mode);
  try {
    const monitor = b.monitor!;
    const times: RouteTimes = { announce: [], withdraw: [], reannounce: [] };
    for (let round = 0; round < ROUNDS; round++) {
      // Kubernetes: a new Service each round. Standalone: the one Service moves to a new VIP.
      const name = mode === 'kubernetes' ? `web-${round}` : 'web';
      if (mode === 'kubernetes' || round === 0) {
        b.setSlice(name, true);
        await new Promise((r) => setTimeout(r, SLICE_SETTLE_MS));
      }
      let t0 = performance.now();
      b.createService(name, vipFor(round));
      const vip = mode === 'kubernetes' ? await b.allocated(name) : vipFor(round);
      times.announce.push((await monitor.next(vip, 'add', t0, ROUTE_TIMEOUT_MS)).at - t0);

      t0 = performance.now();
      b.setSlice(name, false);
      times.withdraw.push((await monitor.next(vip, 'del', t0, ROUTE_TIMEOUT_MS)).at - t0);

      t0 = performance.now();
      b.setSlice(name, true);
      times.reannounce.push((await monitor.next(vip, 'add', t0, ROUTE_TIMEOUT_MS)).at - t0);
    }
    return times;
  } finally {
    await b.destroy();
  }
}

export async function run(): Promise<Figure[]> {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 100)
    throw new Error(`XLB_BENCH_ROUNDS must be an integer in 1..100, not ${ROUNDS}`);
  requireRoot('the bgp benchmark (network namespaces, XDP, BIRD)');

  const k8s = await routeRounds('kubernetes');
  const standalone = await routeRounds('standalone');
  const deadNode = await deadNodeRounds(ROUNDS);
  const bfd: number[] = [];
  for (let i = 0; i < ROUNDS; i++) bfd.push(await detectDeadPeer());

  return [
    ...latencyFigures(
      'Kubernetes: Service created (leader allocates the IP) -> /32 in the router FIB',
      k8s.announce,
      TARGET,
    ),
    ...latencyFigures(
      'Kubernetes: EndpointSlice emptied (last endpoint gone) -> /32 withdrawn from the router FIB',
      k8s.withdraw,
      TARGET,
    ),
    ...latencyFigures(
      'Kubernetes: EndpointSlice refilled -> /32 in the router FIB',
      k8s.reannounce,
      TARGET,
    ),
    ...latencyFigures(
      'standalone: Service manifest with its address written -> /32 in the router FIB',
      standalone.announce,
      TARGET,
    ),
    ...latencyFigures(
      'standalone: EndpointSlice emptied (last endpoint gone) -> /32 withdrawn from the router FIB',
      standalone.withdraw,
      TARGET,
    ),
    ...latencyFigures(
      'standalone: EndpointSlice refilled -> /32 in the router FIB',
      standalone.reannounce,
      TARGET,
    ),
    ...latencyFigures(
      'BFD 300 ms x 3 with BIRD: agent frozen (hung node) -> /32 gone from the router FIB',
      deadNode.detect,
      TARGET,
    ),
    ...latencyFigures(
      'frozen agent replaced: new agent started -> /32 back in the router FIB',
      deadNode.recover,
    ),
    ...latencyFigures(
      'BFD 300 ms x 3 between two xlb sessions on loopback: peer silent -> session down',
      bfd,
      TARGET,
    ),
  ];
}
