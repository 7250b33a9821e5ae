// Three real `xlb agent` processes, one per node, announcing over BGP to one
// router: BIRD 2 merges the equal paths into an ECMP route in the router's
// kernel, which spreads the clients' connections over the nodes.
//
//   client ── router (BIRD, merge paths) ─┬─ node-a (agent) ── web-1
//                                         ├─ node-b (agent) ── web-2
//                                         └─ node-c (agent) ── web-3
//
// Cluster: every node announces and may forward to a pod on another node
// (IPIP), the pod still sees the client. Local: only nodes with a local pod.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ip, run } from '../control/topology/ip.js';
import { ClusterBed, BED, nodeAddresses, POD_PORTS } from '../control/topology/cluster.js';
import { pinCleanup, runCleanup, until } from '../control/topology/agent-harness.js';
import { documents, nodeYaml, serviceYaml, sliceYaml } from '../control/topology/manifests.js';
import { AgentProcess, nodeAgentArgs } from '../control/topology/agent-process.js';
import { BirdProcess } from '../control/topology/bird.js';
import { bgpManifests, birdRouterConfig } from '../control/topology/bgp-router.js';
import { requirePrivileges } from './support/privileged.js';

const NODES = 3;
const CLUSTER_VIP = '192.0.2.220';
const LOCAL_VIP = '192.0.2.221';

describe('three agents, one router: ECMP over BGP', () => {
  let bed: ClusterBed | undefined;
  let bird: BirdProcess | undefined;
  const agents: (AgentProcess | undefined)[] = [];
  const dirs: string[] = [];
  let pinPrefix = '';

  /** What node i reads: the same cluster, and its own side of the router as its peer. */
  const manifests = (i: number): string =>
    documents(
      serviceYaml({
        name: 'web',
        vips: [CLUSTER_VIP],
        ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
      }),
      serviceYaml({
        name: 'edge',
        vips: [LOCAL_VIP],
        externalTrafficPolicy: 'Local',
        ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
      }),
      sliceYaml({
        name: 'web-v4',
        service: 'web',
        family: 4,
        ports: [{ name: 'http', port: POD_PORTS.http }],
        endpoints: bed!.pods.map((p) => ({
          ip: p.v4,
          node: nodeAddresses(p.node).name,
          pod: p.name,
        })),
      }),
      sliceYaml({
        name: 'edge-v4',
        service: 'edge',
        family: 4,
        ports: [{ name: 'http', port: POD_PORTS.http }],
        endpoints: bed!.pods
          .filter((p) => p.node < 2)
          .map((p) => ({ ip: p.v4, node: nodeAddresses(p.node).name, pod: p.name })),
      }),
      ...Array.from({ length: NODES }, (_, i) =>
        nodeYaml(nodeAddresses(i).name, [nodeAddresses(i).v4, nodeAddresses(i).v6]),
      ),
      bgpManifests(i),
    );

  /** The next hops of the router's kernel route to `vip`, sorted. */
  const nextHops = (vip: string): string[] =>
    [...ip('-n', bed!.router, 'route', 'show', `${vip}/32`).matchAll(/via (\S+)/g)]
      .map((m) => m[1]!)
      .sort();

  beforeAll(async () => {
    requirePrivileges('agent-ecmp');
    bed = await ClusterBed.create(['web-1', 'web-2', 'web-3'], { nodes: NODES });
    ip('-n', bed.router, 'route', 'del', BED.vipRangeV4);
    // Hash on ports too, so one client's connections spread over the paths.
    run('ip', [
      'netns',
      'exec',
      bed.router,
      'sysctl',
      '-qw',
      'net.ipv4.fib_multipath_hash_policy=1',
    ]);
    bird = await BirdProcess.start(bed.router, birdRouterConfig(NODES));
    pinPrefix = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
  });

  afterAll(() =>
    runCleanup([
      ...agents.map((a, i) => [`stopping agent ${i}`, () => a?.kill()] as const),
      ['stopping BIRD', () => bird?.stop()],
      ...Array.from({ length: NODES }, (_, i) => pinCleanup(`${pinPrefix}-${i}`)).flat(),
      ['removing the namespaces', () => bed?.destroy()],
      ...dirs.map((d) => [`removing ${d}`, () => rmSync(d, { recursive: true })] as const),
    ]),
  );

  it('every node announces the Cluster VIP and BIRD installs a three-way ECMP route; Local only from nodes with a local pod', async () => {
    for (let i = 0; i < NODES; i++) {
      const a = nodeAddresses(i);
      const dir = mkdtempSync(join(tmpdir(), `xlb-ecmp-${i}-`));
      dirs.push(dir);
      writeFileSync(join(dir, 'all.yaml'), manifests(i));
      agents[i] = await AgentProcess.start(
        nodeAgentArgs({
          nodeName: a.name,
          netns: bed!.nodes[i]!,
          manifests: dir,
          pinDir: `${pinPrefix}-${i}`,
        }),
      );
    }
    for (const a of agents) await a!.waitReady();
    const all = Array.from({ length: NODES }, (_, i) => nodeAddresses(i).v4).sort();
    await until(
      'a three-way ECMP route to the Cluster VIP',
      () => nextHops(CLUSTER_VIP).join() === all.join(),
      20_000,
      100,
    );
    await until(
      'a two-way route to the Local VIP',
      () => nextHops(LOCAL_VIP).join() === all.slice(0, 2).join(),
      20_000,
      100,
    );
  });

  it('spreads connections over the nodes; every pod answers, and each sees the client', async () => {
    // 36 connections: missing one of three pods by chance is about 1 in 700,000.
    const answers = await Promise.all(
      Array.from({ length: 36 }, () => bed!.http(`http://${CLUSTER_VIP}/`)),
    );
    for (const a of answers)
      expect(a).toMatchObject({
        status: 200,
        remote: CLUSTER_VIP,
        body: { client: BED.client.v4 },
      });
    expect(new Set(answers.map((a) => a.body.pod))).toEqual(new Set(['web-1', 'web-2', 'web-3']));
    const local = await Promise.all(
      Array.from({ length: 12 }, () => bed!.http(`http://${LOCAL_VIP}/`)),
    );
    for (const a of local) expect(['web-1', 'web-2']).toContain(a.body.pod);
  });

  it('a node whose agent stops leaves the ECMP route; new connections keep working', async () => {
    expect(await agents[2]!.stop('SIGTERM')).toBe(0);
    const two = Array.from({ length: 2 }, (_, i) => nodeAddresses(i).v4).sort();
    await until(
      'the route to lose node-c',
      () => nextHops(CLUSTER_VIP).join() === two.join(),
      15_000,
      50,
    );
    const answers = await Promise.all(
      Array.from({ length: 12 }, () => bed!.http(`http://${CLUSTER_VIP}/`)),
    );
    for (const a of answers)
      expect(a).toMatchObject({ status: 200, body: { client: BED.client.v4 } });
  });
});
