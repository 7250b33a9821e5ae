// The demo's two disruptions: a pod removed (its endpoint leaves the
// EndpointSlice, then its server stops) and a node that dies (uplink down,
// agent killed). Each shows what happens to connections already open and to
// new requests, and records checks; numbers come from the router, BIRD, the
// agents and the nodes' connection tables.
import { POD_PORTS } from '../topology/cluster.js';
import { BFD, NODE_COUNT, nodeName } from './cluster.js';
import { Connections } from './connections.js';
import {
  birdLastError,
  birdSessionState,
  connectionTablePorts,
  routerNextHops,
  type NextHop,
} from './observe.js';
import { settle, SETTLE_MS } from './poll.js';
import { hopsText, nodeList, requestTable } from './render.js';
import type { Demo } from './scenario.js';

/** The node that dies (node-c: it has web pods but no edge pod). */
export const DOOMED = NODE_COUNT - 1;

/** Opens the step's long-lived connections to web and shows where they went. */
async function openConnections(demo: Demo, label: string, lines: string[]): Promise<Connections> {
  const connections = await Connections.open(
    demo.bed!,
    demo.vips.get('web')!,
    POD_PORTS.tcp,
    demo.options.connections,
  );
  demo.connections.push(connections);
  demo.progress.check(
    `${label}: long-lived connections open`,
    connections.all.length === demo.options.connections,
    `${connections.all.length} of ${demo.options.connections}`,
  );
  lines.push(
    `${connections.all.length} long-lived connections to web (TCP, port ${POD_PORTS.tcp}), by the pod that holds each:`,
    ...connections.table(demo.nodeOfPod).map((l) => `  ${l}`),
    '',
  );
  return connections;
}

export async function removePod(demo: Demo): Promise<{ value: void; lines: string[] }> {
  const lines: string[] = [];
  const connections = await openConnections(demo, 'pod removal', lines);
  // The pod to remove: on a node that stays, holding the most connections.
  const candidates = demo.live.filter((p) => p.service === 'web' && p.node !== DOOMED);
  const count = (pod: string): number => connections.all.filter((c) => c.pod === pod).length;
  const victim = candidates.reduce((a, b) => (count(b.name) > count(a.name) ? b : a));
  demo.live = demo.live.filter((p) => p.name !== victim.name);
  await demo.source!.setEndpoints(demo.live);
  const ms = await demo.backendsConverge(
    'pod removal',
    demo.live.filter((p) => p.service === 'web').map((p) => p.v4),
  );
  demo.bed!.stopPod(victim.name);
  lines.push(
    `removed ${victim.name} (${nodeName(victim.node)}): its endpoint left the EndpointSlice` +
      `${demo.options.kube ? ' (kubectl apply)' : ''}; every agent dropped it in ${Math.round(ms)} ms; then its server stopped`,
  );
  const survivors = connections.all.filter((c) => c.pod !== victim.name);
  const orphans = connections.all.filter((c) => c.pod === victim.name);
  const s = await connections.probe(survivors);
  const o = await connections.probe(orphans);
  demo.progress.check(
    'pod removal: connections to other pods stay up',
    s.answered === survivors.length,
    `${s.answered} of ${survivors.length} still answer from the same pod`,
  );
  lines.push(
    `connections to other pods: ${s.answered} of ${survivors.length} still answer, each from the same pod`,
    orphans.length === 0
      ? `no connection happened to be on ${victim.name}`
      : `connections to ${victim.name}: ${orphans.length}, ${o.lost + o.otherPod} ended with the pod` +
          (o.answered > 0 ? ` (${o.answered} still answered)` : ''),
  );
  const t = await demo.burst('web');
  demo.checkRound('pod removal', 'web', t);
  lines.push('', 'new requests:', ...requestTable('web', t, demo.nodeOfPod));
  return { value: undefined, lines };
}

export async function removeNode(demo: Demo): Promise<{ value: void; lines: string[] }> {
  const dead = nodeName(DOOMED);
  const vip = demo.vips.get('web')!;
  const lines: string[] = [];
  // Fresh connections, balanced by the tables as they are now: a connection
  // the router moves to another node is balanced again there by the same
  // table. (Those opened before the pod went were balanced by the older one.)
  for (const c of demo.connections) c.close();
  const connections = await openConnections(demo, 'node loss', lines);
  const before = routerNextHops(demo.bed!.router, vip);
  // The uplink first: a dying node sends nothing more, not even the FIN a
  // killed process's sockets would.
  const tables = (): Array<Set<number>> =>
    Array.from({ length: NODE_COUNT }, (_, i) =>
      connectionTablePorts(demo.pinDir(i), vip, POD_PORTS.tcp),
    );
  const entered = tables();
  const t0 = performance.now();
  demo.bed!.uplinkDown(DOOMED);
  demo.agents[DOOMED]!.kill();
  const without = (h: NextHop[]): boolean => h.length > 0 && h.every((x) => x.node !== dead);
  const route = await settle(() => routerNextHops(demo.bed!.router, vip), without, {
    timeoutMs: SETTLE_MS,
    intervalMs: 10,
    signal: demo.signal,
    start: t0,
  });
  const why = birdLastError(demo.bird!, DOOMED) || 'no reason given';
  demo.progress.check(
    `node loss: router dropped ${dead}`,
    route.ok,
    route.ok
      ? `after ${Math.round(route.ms)} ms (BIRD: ${why})`
      : `still ${hopsText(route.value ?? [])} after ${Math.round(route.ms)} ms`,
  );
  lines.push(
    `took ${dead}'s uplink down and killed its agent (SIGKILL), as a node that dies`,
    `router, web: ${hopsText(before)}`,
    `     now ->  ${hopsText(route.value ?? [])}`,
    `after ${Math.round(route.ms)} ms; BIRD's session with ${dead}: ${birdSessionState(demo.bird!, DOOMED)} (${why}).`,
    'A link that loses carrier is noticed at once; a node that hangs with its link up is left',
    `to BFD (configured here at ${BFD.intervalMs} ms x ${BFD.multiplier}) instead of the 9 s BGP hold time.`,
    '',
    'The router rehashes the flows that went via the dead node onto the others; every node',
    'builds the same Maglev table from the same seed, so each such flow still reaches its pod.',
    '',
  );
  const alive = connections.alive;
  const onDead = new Set(demo.live.filter((p) => p.node === DOOMED).map((p) => p.name));
  const survivors = alive.filter((c) => !onDead.has(c.pod));
  const doomed = alive.filter((c) => onDead.has(c.pod));
  const s = await connections.probe(survivors);
  const d = await connections.probe(doomed);
  // A connection moved if the dead node had balanced it, or another node
  // balances it now that did not before: the router sent it elsewhere.
  const now = tables();
  const moved = survivors.filter(
    (c) =>
      entered[DOOMED]!.has(c.session.localPort) ||
      now.some(
        (t, i) =>
          i !== DOOMED && t.has(c.session.localPort) && !entered[i]!.has(c.session.localPort),
      ),
  );
  const movedOk = moved.filter((c) => c.alive).length;
  demo.progress.check(
    'node loss: connections to pods elsewhere stay up',
    s.answered === survivors.length,
    `${s.answered} of ${survivors.length} still answer from the same pod (${moved.length} of them rehashed to another node)`,
  );
  lines.push(
    `connections to pods on other nodes: ${s.answered} of ${survivors.length} still answer, each from the same pod;`,
    `  ${moved.length} of them now come in through another node (seen in the nodes' connection tables), and ${movedOk} of those kept their pod`,
    doomed.length === 0
      ? `no connection happened to be on a pod of ${dead}`
      : `connections to pods on ${dead} (${nodeList([...new Set(doomed.map((c) => c.pod))])}): ` +
          `${d.lost + d.otherPod} of ${doomed.length} lost: their pod died with its node` +
          (d.answered > 0 ? ` (${d.answered} still answered)` : ''),
  );
  // What Kubernetes does once the node is NotReady: its pods' endpoints go.
  demo.live = demo.live.filter((p) => p.node !== DOOMED);
  await demo.source!.removeNode(DOOMED);
  await demo.source!.setEndpoints(demo.live);
  const ms = await demo.backendsConverge(
    'node loss',
    demo.live.filter((p) => p.service === 'web').map((p) => p.v4),
  );
  lines.push(
    '',
    `${dead}'s Node and endpoints removed${demo.options.kube ? ' through the API (kubectl delete node, kubectl apply)' : ' from the manifests'}, as Kubernetes does for a node that is gone; the agents followed in ${Math.round(ms)} ms`,
  );
  const t = await demo.burst('web');
  demo.checkRound('node loss', 'web', t);
  lines.push('', 'new requests:', ...requestTable('web', t, demo.nodeOfPod));
  return { value: undefined, lines };
}
