// BFD detection of a dead node, as the router sees it. The real agent peers
// with BIRD, BFD at 300 ms x 3 on both sides, and announces one VIP. Each
// round freezes the agent (SIGSTOP: a hung node whose TCP connection stays
// open, so only BFD can tell) and times how long until the router's kernel
// drops the /32. The frozen agent is then killed and a new one started, as
// a DaemonSet would replace it; it adopts the pinned datapath and the time
// until the route is back is reported too. (Thawing the old one would do,
// but each flap doubles its reconnect back-off, as RFC 4271's damping asks,
// so later rounds would measure the back-off.)
import { performance } from 'node:perf_hooks';

import { until } from '../../control/topology/agent-harness.js';
import { nodeAddresses } from '../../control/topology/cluster.js';
import { BgpBench } from './bed.js';

export const BFD_TIMERS = { intervalMs: 300, multiplier: 3 } as const;
const VIP = '192.0.2.250';
const ROUTE_TIMEOUT_MS = 15_000;

export interface DeadNodeTimes {
  /** Agent frozen -> /32 gone from the router FIB, ms. */
  detect: number[];
  /** New agent started -> /32 back in the router FIB, ms. */
  recover: number[];
}

/** BIRD's BFD session with the node is Up and runs at our timers (detection timeout shown in s). */
function birdBfdUp(b: BgpBench): boolean {
  const row = b
    .bird!.birdc('show bfd sessions')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((cols) => cols[0] === nodeAddresses(0).v4);
  const timeout = (BFD_TIMERS.intervalMs * BFD_TIMERS.multiplier) / 1000;
  return row?.[2] === 'Up' && Number(row[row.length - 1]) === timeout;
}

export async function deadNodeRounds(rounds: number): Promise<DeadNodeTimes> {
  const b = await BgpBench.create('standalone', { bfd: BFD_TIMERS });
  try {
    const monitor = b.monitor!;
    b.setSlice('web', true);
    let t0 = performance.now();
    b.createService('web', VIP);
    await monitor.next(VIP, 'add', t0, ROUTE_TIMEOUT_MS);
    const times: DeadNodeTimes = { detect: [], recover: [] };
    for (let round = 0; round < rounds; round++) {
      await until(
        () => `BIRD's BFD session with the node to be Up at 300 ms x 3 (round ${round})`,
        () => birdBfdUp(b),
        ROUTE_TIMEOUT_MS,
        20,
      );
      const pid = b.agent!.pid!;
      t0 = performance.now();
      process.kill(pid, 'SIGSTOP');
      try {
        times.detect.push((await monitor.next(VIP, 'del', t0, 5_000)).at - t0);
      } finally {
        // SIGKILL ends a stopped process too.
        b.agent!.kill();
      }
      t0 = performance.now();
      await b.restartAgent();
      times.recover.push((await monitor.next(VIP, 'add', t0, ROUTE_TIMEOUT_MS)).at - t0);
    }
    return times;
  } finally {
    await b.destroy();
  }
}
