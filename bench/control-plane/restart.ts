// A restarted agent, as its own process (as a real restart is): fills a
// store with the cluster, adopts the pinned datapath, and reports its first
// reconcile as one JSON line on stdout. Run by bench/control-plane.ts:
//   node restart.js PIN_DIR NETNS SERVICES ENDPOINTS NODES
import { configureLogging } from '../../control/observe/log.js';
import { ClusterStore } from '../../control/store/cluster-store.js';
import { builtCount, memoryMB, nextPass, openAgent, stopAgent, tablesBuilt } from './agent.js';
import { endpointSlice, node, service, type ClusterShape } from './cluster.js';

export interface RestartReport {
  /** Datapath adopted, store filled, first successful reconcile returned. */
  seconds: number;
  writes: number;
  tablesBuilt: number;
  tables: string;
  peakRssMB: number;
}

const [pinDir, ns, services, endpoints, nodes] = process.argv.slice(2);
if (pinDir === undefined || ns === undefined) {
  console.error('usage: restart.js PIN_DIR NETNS SERVICES ENDPOINTS NODES');
  process.exit(2);
}
configureLogging({ level: 'error' });
const shape: ClusterShape = {
  services: Number(services),
  endpointsPerService: Number(endpoints),
  nodes: Number(nodes),
};
const started = performance.now();
const store = new ClusterStore();
const agent = await openAgent(store, pinDir, ns);
try {
  store.replaceAll({
    Service: Array.from({ length: shape.services }, (_, i) => service(i)),
    EndpointSlice: Array.from({ length: shape.services }, (_, i) => endpointSlice(i, shape)),
    Node: Array.from({ length: shape.nodes }, (_, k) => node(k)),
  });
  const first = await nextPass(agent, () => agent.pipeline.start(), 600_000);
  const report: RestartReport = {
    seconds: (performance.now() - started) / 1000,
    writes: first.writes,
    tablesBuilt: builtCount(first),
    tables: tablesBuilt(first),
    peakRssMB: memoryMB('VmHWM'),
  };
  console.log(JSON.stringify(report));
} finally {
  await stopAgent(agent);
}
