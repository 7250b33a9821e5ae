// The real `xlb agent` announcing over BGP to a real router: BIRD 2 in the
// router namespace of the agent topology, with no static route to the VIPs.
// Traffic reaches the pods only through the route the agent announces.
//
//   client ── router (BIRD, kernel export) ── node (agent: XDP + BGP) ── pods
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ip } from '../control/topology/ip.js';
import { ClusterBed, BED, POD_PORTS } from '../control/topology/cluster.js';
import { metricValue, pinCleanup, runCleanup, until } from '../control/topology/agent-harness.js';
import { nodeYaml, serviceYaml, sliceYaml } from '../control/topology/manifests.js';
import { AgentProcess, nodeAgentArgs } from '../control/topology/agent-process.js';
import { BirdProcess } from '../control/topology/bird.js';
import {
  bgpManifests,
  birdProtocol,
  birdRouterConfig,
  NODE_AS,
} from '../control/topology/bgp-router.js';
import { requirePrivileges } from './support/privileged.js';

const VIP = '192.0.2.210';

describe('xlb agent announcing over BGP to BIRD (standalone mode)', () => {
  let bed: ClusterBed | undefined;
  let bird: BirdProcess | undefined;
  let agent: AgentProcess | undefined;
  let dir = '';
  let pinDir = '';

  const slices = (pods: string[]): string =>
    sliceYaml({
      name: 'web-v4',
      service: 'web',
      family: 4,
      ports: [{ name: 'http', port: POD_PORTS.http }],
      endpoints: pods.map((name) => ({ ip: bed!.pod(name).v4, node: 'node-a', pod: name })),
    });

  /** BIRD's route to the VIP: its next hop and communities, or undefined. */
  const birdRoute = (): string | undefined => {
    const out = bird!.birdcOutput(`show route ${VIP}/32 all`);
    return out.includes(`${VIP}/32`) ? out : undefined;
  };

  beforeAll(async () => {
    requirePrivileges('agent-bgp');
    bed = await ClusterBed.create(['web-1', 'web-2']);
    // The VIPs are reachable only through BGP from here on.
    ip('-n', bed.router, 'route', 'del', BED.vipRangeV4);
    bird = await BirdProcess.start(bed.router, birdRouterConfig());
    pinDir = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
    dir = mkdtempSync(join(tmpdir(), 'xlb-agent-bgp-'));
    writeFileSync(
      join(dir, 'service.yaml'),
      serviceYaml({
        name: 'web',
        vips: [VIP],
        ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
      }),
    );
    writeFileSync(join(dir, 'slices.yaml'), slices(['web-1', 'web-2']));
    writeFileSync(join(dir, 'nodes.yaml'), nodeYaml('node-a', [BED.node.v4, BED.node.v6]));
    writeFileSync(join(dir, 'bgp.yaml'), bgpManifests(0, { communities: ['64512:100'] }));
  });

  afterAll(() =>
    runCleanup([
      ['stopping the agent', () => agent?.kill()],
      ['stopping BIRD', () => bird?.stop()],
      ...pinCleanup(pinDir),
      ['removing the namespaces', () => bed?.destroy()],
      dir === '' ? undefined : ['removing the manifests', () => rmSync(dir, { recursive: true })],
    ]),
  );

  it('announces the VIP with its community; the router installs it and traffic reaches the pods', async () => {
    agent = await AgentProcess.start(
      nodeAgentArgs({ nodeName: 'node-a', netns: bed!.node, manifests: dir, pinDir }),
    );
    await agent.waitReady();
    await until(
      'BIRD to establish the session',
      () => bird!.bgpState(birdProtocol(0)) === 'Established',
    );
    const route = await until('BIRD to learn the VIP', birdRoute);
    expect(route).toContain(`via ${BED.node.v4}`);
    expect(route).toMatch(/BGP\.community:\s+\(64512,100\)/);
    expect(route).toMatch(new RegExp(`BGP\\.as_path:\\s+${NODE_AS}\\b`));
    await until('the router kernel to hold the route', () =>
      ip('-n', bed!.router, 'route', 'show', `${VIP}/32`).includes(`via ${BED.node.v4}`),
    );
    // 16 connections: all on one pod by chance is 2 in 65,536 (with 8 it was 1 in 128).
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => bed!.http(`http://${VIP}/`)),
    );
    for (const a of answers)
      expect(a).toMatchObject({ status: 200, remote: VIP, body: { client: BED.client.v4 } });
    expect(new Set(answers.map((a) => a.body.pod)).size).toBe(2);
    const metrics = await agent.metrics();
    expect(metricValue(metrics, 'xlb_bgp_session_state{peer="tor"}')).toBe(6);
  });

  it('withdraws when the last endpoint goes, announces again when one comes back', async () => {
    writeFileSync(join(dir, 'slices.yaml'), slices([]));
    await until('BIRD to lose the route', () => birdRoute() === undefined, 15_000, 50);
    writeFileSync(join(dir, 'slices.yaml'), slices(['web-2']));
    await until('BIRD to learn the route again', birdRoute, 15_000, 50);
  });

  it('withdraws everything when the agent stops', async () => {
    expect(await agent!.stop('SIGTERM')).toBe(0);
    await until('BIRD to lose the route', () => birdRoute() === undefined, 15_000, 50);
    expect(bird!.bgpState(birdProtocol(0))).not.toBe('Established');
  });
});
