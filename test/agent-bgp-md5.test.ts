// The real `xlb agent` (standalone mode) signing its BGP session with TCP
// MD5, the password read from a v1 Secret among its manifests, in the
// agent's own namespace. BIRD in the router
// namespace holds the same password; a session without it never comes up.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { ip } from '../control/topology/ip.js';
import { ClusterBed, BED, POD_PORTS } from '../control/topology/cluster.js';
import { pinCleanup, runCleanup, until } from '../control/topology/agent-harness.js';
import { nodeYaml, serviceYaml, sliceYaml } from '../control/topology/manifests.js';
import { AgentProcess, nodeAgentArgs } from '../control/topology/agent-process.js';
import { BirdProcess } from '../control/topology/bird.js';
import { bgpManifests, birdProtocol, birdRouterConfig } from '../control/topology/bgp-router.js';
import { requirePrivileges } from './support/privileged.js';

const VIP = '192.0.2.212';
const PASSWORD = 'tor-md5-Secret-7x';

const secretYaml = (password: string): string =>
  stringify({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'tor-md5', namespace: 'xlb-system' },
    stringData: { password },
  });

describe('xlb agent: the BGP MD5 password from a Secret (standalone mode)', () => {
  let bed: ClusterBed | undefined;
  let bird: BirdProcess | undefined;
  let agent: AgentProcess | undefined;
  let dir = '';
  let pinDir = '';

  const routeAtRouter = (): boolean =>
    ip('-n', bed!.router, 'route', 'show', `${VIP}/32`).includes(VIP);

  beforeAll(async () => {
    requirePrivileges('agent-bgp-md5');
    bed = await ClusterBed.create(['web-1']);
    ip('-n', bed.router, 'route', 'del', BED.vipRangeV4);
    bird = await BirdProcess.start(bed.router, birdRouterConfig(1, { md5Password: PASSWORD }));
    pinDir = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
    dir = mkdtempSync(join(tmpdir(), 'xlb-agent-md5-'));
    writeFileSync(
      join(dir, 'service.yaml'),
      serviceYaml({
        name: 'web',
        vips: [VIP],
        ports: [{ name: 'http', port: 80, targetPort: POD_PORTS.http }],
      }),
    );
    writeFileSync(
      join(dir, 'slices.yaml'),
      sliceYaml({
        name: 'web-v4',
        service: 'web',
        family: 4,
        ports: [{ name: 'http', port: POD_PORTS.http }],
        endpoints: [{ ip: bed.pod('web-1').v4, node: 'node-a', pod: 'web-1' }],
      }),
    );
    writeFileSync(join(dir, 'nodes.yaml'), nodeYaml('node-a', [BED.node.v4, BED.node.v6]));
    writeFileSync(
      join(dir, 'bgp.yaml'),
      bgpManifests(0, {}, { passwordSecretRef: { name: 'tor-md5' } }),
    );
    writeFileSync(join(dir, 'secret.yaml'), secretYaml(PASSWORD));
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

  it('signs the session with the Secret’s password: BIRD establishes and traffic follows the route', async () => {
    agent = await AgentProcess.start([
      ...nodeAgentArgs({ nodeName: 'node-a', netns: bed!.node, manifests: dir, pinDir }),
      // What $POD_NAMESPACE would say in a pod; the Secret must be there.
      '--lease-namespace',
      'xlb-system',
    ]);
    await agent.waitReady();
    await until(
      () =>
        `BIRD to establish the MD5 session (${bird!.birdcOutput(`show protocols all ${birdProtocol(0)}`)})`,
      () => bird!.bgpState(birdProtocol(0)) === 'Established',
      20_000,
      50,
    );
    await until('the route at the router', routeAtRouter, 10_000, 50);
    const answer = await bed!.http(`http://${VIP}/`);
    expect(answer.body).toMatchObject({ pod: 'web-1', client: BED.client.v4 });
  });

  it('a Secret that goes away makes the peer invalid, named, and the running session stays', async () => {
    rmSync(join(dir, 'secret.yaml'));
    const problem = await agent!.line(
      'the agent to report the missing Secret',
      (l) =>
        l.msg === 'BGP configuration problem' &&
        String(l.problem).includes('Secret xlb-system/tor-md5 does not exist'),
    );
    expect(String(problem.problem)).toContain("BGPPeer 'tor'");
    // Kept as it ran: still Established, the route still there.
    expect(bird!.bgpState(birdProtocol(0))).toBe('Established');
    expect(routeAtRouter()).toBe(true);
  });

  it('never writes the password to its log or its metrics', async () => {
    const text = JSON.stringify(agent!.lines) + agent!.other.join('\n') + agent!.stderr;
    expect(text).not.toContain(PASSWORD);
    expect(await agent!.metrics()).not.toContain(PASSWORD);
  });
});
