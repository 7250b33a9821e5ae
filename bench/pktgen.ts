// The live-frames generator through real veths, on one core: (a) frames
// generated into a veth whose other end drops them (the generator's ceiling
// on this path), and (b) the same with the receiver redirecting every frame
// into a second veth to a sink, against (a) as the baseline. Rates come from
// the receiver program's own counter. Drop and redirect rounds alternate so
// drift in the machine's load hits both alike; the median is reported.
import { requireRoot } from '../control/system/privileges.js';
import { BaselineReceiver } from './pktgen/baselines.js';
import { buildFrame } from './pktgen/frame.js';
import { type Measurement, VethBench } from './pktgen/veth-bench.js';
import type { Figure } from './results.js';

const PACKETS = 2_000_000;
const WARMUP_PACKETS = 200_000;
const ROUNDS = 3;
/** Per run; a run normally takes well under a second. */
const TIME_LIMIT_SECONDS = 2;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function run(): Promise<Figure[]> {
  requireRoot('the pktgen benchmark');
  const frame = buildFrame({ src: '192.0.2.1', dst: '198.51.100.1', sport: 40000, dport: 9 });
  const traffic = { frame, packets: PACKETS, timeLimitSeconds: TIME_LIMIT_SECONDS };

  using bench = VethBench.create({ prefix: 'xlbb' });
  using drop = BaselineReceiver.load('drop');
  using redirect = BaselineReceiver.load('redirect', { redirectIfindex: bench.dutOutIfindex });

  // First runs pay for cold caches and page-pool set-up; not measured.
  bench.measure(drop, { ...traffic, packets: WARMUP_PACKETS });
  bench.measure(redirect, { ...traffic, packets: WARMUP_PACKETS });

  const drops: Measurement[] = [];
  const redirects: Measurement[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    drops.push(bench.measure(drop, traffic));
    redirects.push(bench.measure(redirect, traffic));
  }
  for (const m of redirects) {
    if (m.sinkReceived !== m.processed) {
      throw new Error(`the sink saw ${m.sinkReceived} of ${m.processed} redirected frames`);
    }
  }
  const mpps = (ms: Measurement[]): number => median(ms.map((m) => m.pps / 1e6));
  const lost = [...drops, ...redirects].reduce((n, m) => n + (m.sent - m.processed), 0);
  const dropMpps = mpps(drops);
  return Promise.resolve([
    {
      name: 'generator -> veth -> bench_drop, 64-byte UDP/IPv4',
      value: dropMpps,
      unit: 'Mpps',
    },
    {
      name: 'generator -> veth -> bench_redirect -> veth -> sink',
      value: mpps(redirects),
      unit: 'Mpps',
      baseline: dropMpps,
    },
    {
      name: `frames not processed by the receiver (${2 * ROUNDS} runs)`,
      value: lost,
      unit: 'frames',
    },
  ]);
}
