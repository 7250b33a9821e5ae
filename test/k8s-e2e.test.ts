// The Kubernetes path end to end: the real `xlb agent` process watching the
// API server double over HTTP, the real kubectl as the operator, and real
// traffic through network namespaces (client -- router -- node -- pods).
//
//   kubectl expose deployment --type=LoadBalancer -> the leader allocates an address,
//   writes status (kubectl shows it) -> the node's datapath balances the VIP
//   over the pods -> endpoints change -> the agent restarts -> the API
//   server goes away for a minute -> pools run out, requests are invalid ->
//   the Service is deleted: the finalizer goes only once the VIP is gone.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { XlbVipKey } from '../control/datapath/abi.js';
import { fromDatapathAddress } from '../control/datapath/address.js';
import { uncoveredRequests } from '../control/k8s/permissions.js';
import type { Family } from '../control/model/types.js';
import { projectRoot } from '../control/paths.js';
import { ClusterBed, BED, POD_PORTS } from '../control/topology/cluster.js';
import { metricValue, pinCleanup, runCleanup, until } from '../control/topology/agent-harness.js';
import { nodeYaml, sliceYaml } from '../control/topology/manifests.js';
import { AgentProcess } from '../control/topology/agent-process.js';
import { ApiServer, type KubeObject } from '../control/apiserver-double/index.js';
import { kubeconfigYaml, kubectl } from './support/kubectl.js';
import { BpfMap } from '../native/index.js';
import { requirePrivileges } from './support/privileged.js';

const CRD = parse(
  readFileSync(join(projectRoot(), 'charts', 'xlb', 'crds', 'ippool.yaml'), 'utf8'),
) as KubeObject;
const FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';
const LEASE = 'xlb-leader';
/** Two addresses: a third Service finds the pool exhausted. */
const POOL = ['192.0.2.200', '192.0.2.201'];
/** `kubectl expose` leaves a single service port unnamed; its EndpointSlice port is named ''. */
const PORT_NAME = '';
const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/pod-server:1, ports: [{containerPort: ${POD_PORTS.http}}]}]
`;

interface Ingress {
  ip?: string;
  ipMode?: string;
}

describe('xlb agent end to end (Kubernetes mode, API server double)', () => {
  let server: ApiServer | undefined;
  let bed: ClusterBed | undefined;
  let agent: AgentProcess | undefined;
  let dir = '';
  let pinDir = '';

  const agentArgs = (): string[] => [
    '--node-name',
    'node-a',
    '--uplink',
    'eth0',
    '--netns',
    bed!.node,
    '--kubeconfig',
    join(dir, 'kubeconfig'),
    '--lease-namespace',
    'default',
    '--lease-name',
    LEASE,
    '--identity',
    'xlb-node-a',
    '--default-class',
    '--pin-dir',
    pinDir,
    '--metrics-address',
    '127.0.0.1:0',
    '--log-level',
    'debug',
  ];

  const ctl = (...args: string[]) => kubectl(server!.url, args);

  const ingress = (name: string): Ingress[] =>
    (server!.get('Service', name)?.status as { loadBalancer?: { ingress?: Ingress[] } })
      ?.loadBalancer?.ingress ?? [];

  const addressOf = (name: string): Promise<string> =>
    until(`Service ${name} to get an address in its status`, () => ingress(name)[0]?.ip);

  /** The EndpointSlice the EndpointSlice controller would write for `service` over `pods`. */
  const slice = (service: string, pods: string[]): void => {
    server!.apply(
      parse(
        sliceYaml({
          name: `${service}-v4`,
          service,
          family: 4,
          ports: [{ name: PORT_NAME, port: POD_PORTS.http }],
          endpoints: pods.map((p) => ({ ip: bed!.pod(p).v4, node: 'node-a', pod: p })),
        }),
      ) as KubeObject,
    );
  };

  /** Pods that answered `count` new HTTP connections to `vip`; each saw the real client. */
  async function podsServing(vip: string, count: number): Promise<string[]> {
    const answers = await Promise.all(
      Array.from({ length: count }, () => bed!.http(`http://${vip}/`)),
    );
    for (const a of answers)
      expect(a).toMatchObject({ status: 200, remote: vip, body: { client: BED.client.v4 } });
    return answers.map((a) => a.body.pod);
  }

  /** The Service's events, whichever Event version the double serves them as. */
  const events = (service: string): Array<{ reason?: string; note?: string }> =>
    server!
      .objects('Event', 'default')
      .filter((e) => {
        const about = (e.regarding ?? e.involvedObject) as { name?: string } | undefined;
        return about?.name === service;
      })
      .map((e) => ({ reason: e.reason as string, note: (e.note ?? e.message) as string }));

  /** The VIPs in the node's datapath now (its pinned xlb_vips map). */
  const datapathVips = (): string[] => {
    using vips = BpfMap.openPinned(join(pinDir, 'xlb_vips'));
    return [...vips.keys()].map((k) => {
      const key = XlbVipKey.decode(k);
      return fromDatapathAddress(key.addr, key.family as Family);
    });
  };

  beforeAll(async () => {
    requirePrivileges('k8s-e2e');
    server = await ApiServer.start();
    server.apply(CRD);
    server.apply({
      apiVersion: 'xlb.dev/v1alpha1',
      kind: 'IPPool',
      metadata: { name: 'lab' },
      spec: { addresses: [`${POOL[0]}-${POOL[1]}`], autoAssign: true, avoidBuggyIPs: false },
    });
    server.apply(parse(nodeYaml('node-a', [BED.node.v4, BED.node.v6])) as KubeObject);
    bed = await ClusterBed.create(['web-1', 'web-2']);
    pinDir = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
    dir = mkdtempSync(join(tmpdir(), 'xlb-k8s-e2e-'));
    writeFileSync(join(dir, 'kubeconfig'), kubeconfigYaml(server.url), { mode: 0o600 });
  });

  afterAll(() =>
    runCleanup([
      ['stopping the agent', () => agent?.kill()],
      ...pinCleanup(pinDir),
      ['removing the namespaces', () => bed?.destroy()],
      ['stopping the API server', () => server?.close()],
      dir === '' ? undefined : ['removing the kubeconfig', () => rmSync(dir, { recursive: true })],
    ]),
  );

  it('kubectl expose deployment --type=LoadBalancer: an address from the pool, shown by kubectl, balanced over the pods', async () => {
    agent = await AgentProcess.start(agentArgs());
    await agent.waitReady();
    await agent.line('leadership', (l) => l.component === 'k8s' && /^leading/.test(l.msg));

    // As in the Kubernetes documentation's example; no controller runs the
    // Deployment's pods here, so the EndpointSlice below stands in for it.
    const applied = await kubectl(server!.url, ['apply', '-f', '-'], { input: DEPLOYMENT });
    expect(applied.stderr).toBe('');
    const exposed = await ctl(
      'expose',
      'deployment',
      'web',
      '--port=80',
      `--target-port=${POD_PORTS.http}`,
      '--type=LoadBalancer',
    );
    expect(exposed.stdout).toBe('service/web exposed\n');
    slice('web', ['web-1', 'web-2']);
    const vip = await addressOf('web');
    expect(vip).toBe(POOL[0]);
    expect(ingress('web')).toEqual([{ ip: vip, ipMode: 'VIP' }]);
    expect(server!.get('Service', 'web')?.metadata.finalizers).toEqual([FINALIZER]);

    const get = await ctl('get', 'svc', 'web');
    expect(get.stdout).toMatch(new RegExp(`^web\\s+LoadBalancer\\s+\\S+\\s+${vip}\\s+80:`, 'm'));
    const described = await until('kubectl describe to show the event', async () => {
      const d = await ctl('describe', 'svc', 'web');
      return /IPAllocated/.test(d.stdout) && d.stdout;
    });
    expect(described).toMatch(new RegExp(`LoadBalancer Ingress:\\s+${vip.replaceAll('.', '\\.')}`));

    await until(
      'both pods to answer through the VIP',
      async () => new Set(await podsServing(vip, 12)).size === 2,
      15_000,
      100,
    );
    const metrics = await agent.metrics();
    expect(metricValue(metrics, 'xlb_agent_leader')).toBe(1);
    expect(metricValue(metrics, 'xlb_frontends')).toBe(1);
  });

  it('scaling the endpoints moves new connections to the pods left', async () => {
    const vip = ingress('web')[0]!.ip!;
    slice('web', ['web-2']);
    await until(
      'every new connection to go to web-2',
      async () => (await podsServing(vip, 8)).every((p) => p === 'web-2'),
      15_000,
      100,
    );
    slice('web', ['web-1', 'web-2']);
    await until(
      'both pods again',
      async () => new Set(await podsServing(vip, 12)).size === 2,
      15_000,
      100,
    );
  });

  it('an agent (and leader) restart keeps the address and writes no Service', async () => {
    const vip = ingress('web')[0]!.ip!;
    expect(await agent!.stop('SIGTERM')).toBe(0);
    const before = server!.requests().length;
    agent = await AgentProcess.start(agentArgs());
    await agent.waitReady();
    await agent.line('leadership again', (l) => l.component === 'k8s' && /^leading/.test(l.msg));
    // A pass of the new leader has run once it has looked at the pool.
    // A new Service gets the next address: the new leader's passes run, and
    // they wrote nothing to the Service that already had its address.
    await ctl('create', 'service', 'loadbalancer', 'api', '--tcp=81:8080');
    expect(await addressOf('api')).toBe(POOL[1]);
    expect(ingress('web')).toEqual([{ ip: vip, ipMode: 'VIP' }]);
    const writes = server!
      .requests()
      .slice(before)
      .filter(
        (r) =>
          r.resource === 'services' &&
          !['get', 'list', 'watch'].includes(r.verb ?? '') &&
          !r.userAgent?.startsWith('kubectl'),
      );
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.filter((r) => r.name !== 'api')).toEqual([]);
    expect(new Set(await podsServing(vip, 16)).size).toBe(2);
  });

  it('the API server unreachable for 60 s: traffic keeps flowing, and the agent catches up after', async () => {
    const vip = ingress('web')[0]!.ip!;
    await server!.disconnect();
    try {
      // The EndpointSlice changes while nobody can watch it.
      slice('web', ['web-1']);
      for (let t = 0; t < 6; t++) {
        await new Promise((r) => setTimeout(r, 10_000));
        // 16 connections: all on one pod by chance is 2 in 65,536.
        expect(new Set(await podsServing(vip, 16)).size, `after ${10 * (t + 1)} s`).toBe(2);
      }
      expect(agent!.running).toBe(true);
    } finally {
      // Later tests need the server, whatever happened here.
      await server!.reconnect();
    }
    await until(
      'this agent to lead again',
      async () => metricValue(await agent!.metrics(), 'xlb_agent_leader') === 1,
      30_000,
      200,
    );
    await until(
      'the change made during the outage to reach the datapath',
      async () => (await podsServing(vip, 8)).every((p) => p === 'web-1'),
      30_000,
      200,
    );
    slice('web', ['web-1', 'web-2']);
  }, 120_000);

  it('an exhausted pool and an invalid request get events and conditions, and disturb no one', async () => {
    await ctl('create', 'service', 'loadbalancer', 'late', '--tcp=82:8080');
    const pending = await until('late to be told why it waits', () =>
      events('late').find((e) => e.reason === 'AllocationFailed'),
    );
    expect(pending.note).toMatch(/lab/);
    // The event and the condition are separate writes: wait for both.
    const conditions = await until(
      'late to carry its pending condition',
      () =>
        (server!.get('Service', 'late')?.status as { conditions?: unknown[] } | undefined)
          ?.conditions,
    );
    expect(conditions).toEqual([
      expect.objectContaining({ type: 'xlb.dev/AddressAssigned', status: 'False' }),
    ]);

    const bad = await ctl(
      'annotate',
      'service',
      'api',
      'xlb.dev/load-balancer-ips=300.1.2.3',
      '--overwrite',
    );
    expect(bad.status).toBe(0);
    await until('the invalid request to be reported', () =>
      events('api').find((e) => e.reason !== 'IPAllocated'),
    );
    // The invalid request keeps what it validly holds; web is untouched.
    expect(ingress('api')[0]?.ip).toBe(POOL[1]);
    const vip = ingress('web')[0]!.ip!;
    expect(new Set(await podsServing(vip, 16)).size).toBe(2);
  });

  it('deleting a Service: the finalizer goes only once the datapath dropped the VIP, and the address serves the next Service', async () => {
    const vip = ingress('web')[0]!.ip!;
    const deleted = await ctl('delete', 'service', 'web', '--wait=false');
    expect(deleted.status).toBe(0);
    // Sampled object first, then the datapath: a VIP still in the maps after
    // the object was seen gone would be a finalizer removed too early.
    let servedAfterGone = false;
    await until(
      'web to be gone',
      () => {
        const exists = server!.get('Service', 'web') !== undefined;
        // Once web is gone the address may go to late, which serves it again:
        // only a sample with late holding nothing on both sides counts.
        const lateBefore = ingress('late').length;
        const served = datapathVips().includes(vip);
        if (!exists && served && lateBefore === 0 && ingress('late').length === 0)
          servedAfterGone = true;
        return !exists;
      },
      20_000,
      5,
    );
    expect(servedAfterGone, `${vip} was still in the datapath after web was gone`).toBe(false);
    expect(datapathVips()).not.toContain(vip);
    expect(await addressOf('late')).toBe(vip);
    await until('late to be told it got the address', () =>
      events('late').some((e) => e.reason === 'IPAllocated'),
    );
  });

  it('the agent asked the API server for nothing the chart grants it not', () => {
    // The agent's requests, not the operator's kubectl.
    const agents = server!.requests().filter((r) => !r.userAgent?.startsWith('kubectl'));
    expect(agents.length).toBeGreaterThan(20);
    const un = uncoveredRequests(agents, { namespace: 'default', leaseName: LEASE });
    expect(un.map((r) => `${r.method} ${r.url}`)).toEqual([]);
  });
});
