// Graceful restart (RFC 4724) across a restart of the real `xlb agent`, with
// BIRD 2 as the router (graceful restart on, routes exported to the router's
// kernel, no static route to the VIPs):
//
//   client ── router (BIRD) ── node (agent: XDP + BGP) ── pods
//
// SIGTERM closes the session without a NOTIFICATION: BIRD keeps our routes
// as stale, so the router's FIB never loses the VIP (sampled every 50 ms)
// and the pinned datapath keeps answering while no agent runs. The next
// agent adopts the datapath, opens with the Restart State and Forwarding
// State bits, announces the model after its first reconcile, then
// End-of-RIB: a Service deleted meanwhile leaves the router then. With
// --bgp-stop withdraw the route leaves the router at stop.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ip } from '../control/topology/ip.js';
import { ClusterBed, BED, POD_PORTS } from '../control/topology/cluster.js';
import { pinCleanup, runCleanup, until } from '../control/topology/agent-harness.js';
import { documents, nodeYaml, serviceYaml, sliceYaml } from '../control/topology/manifests.js';
import { AgentProcess, nodeAgentArgs } from '../control/topology/agent-process.js';
import { BirdProcess } from '../control/topology/bird.js';
import { bgpManifests, birdRouterConfig } from '../control/topology/bgp-router.js';
import { requirePrivileges } from './support/privileged.js';

const run = promisify(execFile);

/** Stays across the restart. */
const KEPT = '192.0.2.211';
/** Its Service is deleted while no agent runs. */
const DELETED = '192.0.2.212';
const RESTART_TIME = 30;

const BIRD_CONFIG = birdRouterConfig(1, { gracefulRestart: true });
const BGP_MANIFESTS = bgpManifests(
  0,
  {},
  { gracefulRestart: { enabled: true, restartTime: RESTART_TIME } },
);

describe('xlb agent restart with BGP graceful restart (BIRD 2)', () => {
  let bed: ClusterBed | undefined;
  let bird: BirdProcess | undefined;
  let agent: AgentProcess | undefined;
  let dir = '';
  let pinDir = '';

  const serviceFile = (name: string, vip: string): void => {
    writeFileSync(
      join(dir, `${name}.yaml`),
      documents(
        serviceYaml({
          name,
          vips: [vip],
          ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
        }),
        sliceYaml({
          name: `${name}-v4`,
          service: name,
          family: 4,
          ports: [{ name: 'http', port: POD_PORTS.http }],
          endpoints: ['web-1', 'web-2'].map((pod) => ({
            ip: bed!.pod(pod).v4,
            node: 'node-a',
            pod,
          })),
        }),
      ),
    );
  };

  /** The router kernel's route to a VIP through the node, as `ip route` has it. */
  const fibHas = async (vip: string): Promise<boolean> => {
    const { stdout } = await run('ip', ['-n', bed!.router, 'route', 'show', `${vip}/32`]);
    return stdout.includes(`via ${BED.node.v4}`);
  };
  const protocol = () => bird!.birdcOutput('show protocols all node0');
  const context = () =>
    `BIRD:\n${protocol()}\n${bird!.birdcOutput('show route all')}\nagent log:\n` +
    (agent?.lines
      .slice(-15)
      .map((l) => JSON.stringify(l))
      .join('\n') ?? '');

  const startAgent = async (extra: string[] = []): Promise<AgentProcess> =>
    AgentProcess.start([
      ...nodeAgentArgs({ nodeName: 'node-a', netns: bed!.node, manifests: dir, pinDir }),
      ...extra,
    ]);

  /** Samples the router's FIB for `vip` every ~50 ms until stopped: the instants it was missing. */
  const sampleFib = (vip: string) => {
    let running = true;
    const missing: number[] = [];
    let samples = 0;
    const loop = (async () => {
      while (running) {
        if (!(await fibHas(vip))) missing.push(Date.now());
        samples++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      missing,
      stop: async () => {
        running = false;
        await loop;
        return samples;
      },
    };
  };

  beforeAll(async () => {
    requirePrivileges('agent-bgp-restart');
    bed = await ClusterBed.create(['web-1', 'web-2']);
    // The VIPs are reachable only through BGP from here on.
    ip('-n', bed.router, 'route', 'del', BED.vipRangeV4);
    bird = await BirdProcess.start(bed.router, BIRD_CONFIG);
    pinDir = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
    dir = mkdtempSync(join(tmpdir(), 'xlb-agent-bgp-restart-'));
    serviceFile('web', KEPT);
    serviceFile('api', DELETED);
    writeFileSync(join(dir, 'nodes.yaml'), nodeYaml('node-a', [BED.node.v4, BED.node.v6]));
    writeFileSync(join(dir, 'bgp.yaml'), BGP_MANIFESTS);
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

  it('the router keeps the routes while the agent restarts; End-of-RIB removes a Service deleted meanwhile', async () => {
    agent = await startAgent();
    await agent.waitReady();
    await until(
      () => `both VIPs in the router's FIB (${context()})`,
      async () => (await fibHas(KEPT)) && (await fibHas(DELETED)),
      15_000,
      50,
    );
    expect(protocol()).toMatch(/Neighbor capabilities[^]*Graceful restart\n\s+Restart time: 30/);

    const sampler = sampleFib(KEPT);
    try {
      expect(await agent.stop('SIGTERM')).toBe(0);
      const closed = agent.lines.find((l) => l.stop !== undefined && l.peer === 'tor');
      expect(closed).toMatchObject({ stop: 'graceful', routes: 2, restartTime: RESTART_TIME });
      await until(
        () => `BIRD to see the session go (${context()})`,
        () => bird!.bgpState('node0') !== 'Established',
        5_000,
        50,
      );
      // BIRD holds our routes as stale and waits for us; no NOTIFICATION reached it.
      expect(protocol()).toMatch(/Neighbor graceful restart active/);
      expect(protocol()).not.toMatch(/Received: Administrative shutdown/);

      // No agent runs: the pinned datapath keeps answering through the kept route.
      unlinkSync(join(dir, 'api.yaml'));
      for (const answer of await bed!.httpMany(`http://${KEPT}/`, 4))
        expect(answer).toMatchObject({
          status: 200,
          remote: KEPT,
          body: { client: BED.client.v4 },
        });
      expect(await fibHas(DELETED)).toBe(true);

      agent = await startAgent();
      const started = await agent.line(
        'the session to start as a restart',
        (l) => l.msg === 'BGP session started',
      );
      expect(started).toMatchObject({ peer: 'tor', restarting: true, forwardingPreserved: true });
      await agent.waitReady();
      await until(
        () => `BIRD to establish the session again (${context()})`,
        () => bird!.bgpState('node0') === 'Established',
        15_000,
        50,
      );
      // Our OPEN carried the Restart State bit, and the F bit for both families.
      expect(protocol()).toMatch(
        /Neighbor capabilities[^]*Graceful restart\n\s+Restart time: 30\n\s+Restart recovery\n\s+AF supported: ipv4 ipv6\n\s+AF preserved: ipv4 ipv6/,
      );
      await agent.line('End-of-RIB after the first reconcile', (l) =>
        l.msg.startsWith('End-of-RIB sent'),
      );
      await until(
        () => `the deleted Service's VIP to leave the router after End-of-RIB (${context()})`,
        async () => !(await fibHas(DELETED)),
        10_000,
        50,
      );
      expect(await fibHas(KEPT)).toBe(true);
      expect(protocol()).not.toMatch(/Neighbor graceful restart active/);
      const after = await bed!.http(`http://${KEPT}/`);
      expect(after).toMatchObject({ status: 200, remote: KEPT });
    } finally {
      const samples = await sampler.stop();
      expect(samples).toBeGreaterThan(10);
      expect(sampler.missing, `the VIP was missing from the router's FIB`).toEqual([]);
    }
  });

  it('with --bgp-stop withdraw the route leaves the router at stop', async () => {
    expect(await agent!.stop('SIGTERM')).toBe(0);
    agent = await startAgent(['--bgp-stop', 'withdraw']);
    await agent.waitReady();
    await until(
      () => `the session up again with the VIP (${context()})`,
      async () => bird!.bgpState('node0') === 'Established' && (await fibHas(KEPT)),
      15_000,
      50,
    );
    await agent.line('End-of-RIB after the first reconcile', (l) =>
      l.msg.startsWith('End-of-RIB sent'),
    );
    expect(await agent.stop('SIGTERM')).toBe(0);
    expect(agent.lines.find((l) => l.stop !== undefined && l.peer === 'tor')).toMatchObject({
      stop: 'withdraw',
      routes: 1,
    });
    await until(
      () => `the VIP to leave the router's FIB (${context()})`,
      async () => !(await fibHas(KEPT)),
      5_000,
      50,
    );
    expect(protocol()).toMatch(/Last error:\s+Received: Administrative shutdown/);
  });
});
