// `npm run bench -- NAME`: runs one benchmark, prints its table and writes
// bench/results/NAME.json.
import { report, type Figure } from './results.js';

const benchmarks: Record<string, () => Promise<{ run: () => Promise<Figure[]> }>> = {
  bgp: () => import('./bgp.js'),
  'control-plane': () => import('./control-plane.js'),
  datapath: () => import('./datapath.js'),
  maglev: () => import('./maglev.js'),
  pktgen: () => import('./pktgen.js'),
};

const name = process.argv[2];
const load = name === undefined ? undefined : benchmarks[name];
if (!load) {
  console.error(`usage: npm run bench -- NAME\nbenchmarks: ${Object.keys(benchmarks).join(', ')}`);
  process.exit(2);
}
try {
  const bench = await load();
  report(name!, await bench.run());
} catch (e) {
  console.error(`bench ${name}: ${(e as Error).message}`);
  process.exit(1);
}
