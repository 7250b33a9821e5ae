// The agent: its pipeline with a fake datapath (no root), its HTTP endpoints,
// the model change log and metrics rows; then the real agent end to end as a
// child process in a namespace topology (root).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { Agent } from '../control/agent/agent.js';
import { DEFAULT_HASH_SEED, type AgentSettings } from '../control/agent/config.js';
import { announcementRows, decisionRows, rejectedFiles } from '../control/agent/metrics.js';
import { diffModel } from '../control/agent/model-changes.js';
import type { Announcement, Decision } from '../control/model/index.js';
import { startObserveServer } from '../control/observe/server.js';
import type { Session } from '../control/topology/testbed.js';
import { ClusterBed, BED, POD_PORTS } from '../control/topology/cluster.js';
import { AgentProcess, nodeAgentArgs, runAgentCommand } from '../control/topology/agent-process.js';
import { documents, nodeYaml, serviceYaml, sliceYaml } from '../control/topology/manifests.js';
import {
  get,
  LogCapture,
  metricValue,
  pinCleanup,
  runCleanup,
  until,
} from '../control/topology/agent-harness.js';
import { FakeDatapath } from './support/fake-datapath.js';
import { requirePrivileges } from './support/privileged.js';

const decision = (
  service: string,
  reason: Decision['reason'],
  message: string,
  unit?: string,
): Decision => ({
  service,
  reason,
  severity: reason === 'noAddress' || reason === 'otherClass' ? 'info' : 'warning',
  message,
  ...(unit !== undefined ? { unit } : {}),
});

const announcement = (
  address: string,
  announce: boolean,
  reason: Announcement['reason'],
  weight = announce ? 1 : 0,
): Announcement => ({
  service: 'default/web',
  address,
  family: address.includes(':') ? 6 : 4,
  announce,
  reason,
  weight,
  message: `${reason} ${weight}`,
});

describe('model changes for the log', () => {
  it('says nothing when nothing changed, whatever the order', () => {
    const d = [decision('default/a', 'noAddress', 'x'), decision('default/b', 'invalidPort', 'y')];
    const a = [announcement('192.0.2.1', true, 'hasEndpoints')];
    const m = { decisions: d, nodeDecisions: [], announcements: a };
    expect(diffModel(m, { ...m, decisions: [...d].reverse() })).toEqual([]);
  });

  it('reports added, resolved and changed decisions, pairing a moved message as one change', () => {
    const before = {
      decisions: [
        decision('default/a', 'noAddress', 'no LB IP'),
        decision('default/b', 'maglevTableSmall', 'table of 251 for 3 backends', 'u1'),
        decision('default/c', 'invalidEndpointAddress', 'endpoint 1'),
        decision('default/c', 'invalidEndpointAddress', 'endpoint 2'),
      ],
      nodeDecisions: [],
      announcements: [],
    };
    const after = {
      decisions: [
        decision('default/b', 'maglevTableSmall', 'table of 251 for 4 backends', 'u1'),
        decision('default/c', 'invalidEndpointAddress', 'endpoint 2'),
        decision('default/d', 'otherClass', 'class other'),
      ],
      nodeDecisions: [
        {
          node: 'n',
          reason: 'thisNodeUnknown' as const,
          severity: 'warning' as const,
          message: 'm',
        },
      ],
      announcements: [],
    };
    expect(diffModel(before, after)).toEqual([
      {
        kind: 'node',
        change: 'added',
        node: 'n',
        reason: 'thisNodeUnknown',
        severity: 'warning',
        message: 'm',
      },
      {
        kind: 'decision',
        change: 'changed',
        service: 'default/b',
        unit: 'u1',
        reason: 'maglevTableSmall',
        severity: 'warning',
        message: 'table of 251 for 4 backends',
        previous: 'table of 251 for 3 backends',
      },
      expect.objectContaining({ change: 'added', service: 'default/d', reason: 'otherClass' }),
      expect.objectContaining({ change: 'resolved', service: 'default/a', reason: 'noAddress' }),
      expect.objectContaining({
        change: 'resolved',
        service: 'default/c',
        reason: 'invalidEndpointAddress',
        message: 'endpoint 1',
      }),
    ]);
  });

  it('reports an announcement when its decision, reason or weight moves, and when its address goes', () => {
    const before = {
      decisions: [],
      nodeDecisions: [],
      announcements: [
        announcement('192.0.2.1', true, 'localEndpoints', 2),
        announcement('192.0.2.2', true, 'hasEndpoints'),
        announcement('2001:db8::1', true, 'hasEndpoints'),
      ],
    };
    const after = {
      ...before,
      announcements: [
        announcement('192.0.2.1', true, 'localEndpoints', 3),
        announcement('192.0.2.2', true, 'hasEndpoints'),
      ],
    };
    expect(diffModel(before, after)).toEqual([
      expect.objectContaining({
        kind: 'announcement',
        change: 'changed',
        address: '192.0.2.1',
        weight: 3,
        previous: { announce: true, reason: 'localEndpoints', weight: 2 },
      }),
      expect.objectContaining({ change: 'removed', address: '2001:db8::1', announce: false }),
    ]);
  });
});

describe('agent metrics rows', () => {
  it('counts announcements by decision and reason, and every known reason', () => {
    expect(
      announcementRows({
        announcements: [
          announcement('192.0.2.1', true, 'hasEndpoints'),
          announcement('192.0.2.2', true, 'hasEndpoints'),
          announcement('192.0.2.3', false, 'noEndpoints'),
        ],
      }),
    ).toEqual([
      { labels: { announce: 'true', reason: 'hasEndpoints' }, value: 2 },
      { labels: { announce: 'false', reason: 'noEndpoints' }, value: 1 },
    ]);
    const rows = decisionRows({
      decisions: [decision('default/a', 'noAddress', 'x')],
      nodeDecisions: [],
    });
    expect(rows).toContainEqual({ labels: { reason: 'noAddress', severity: 'info' }, value: 1 });
    expect(rows).toContainEqual({
      labels: { reason: 'frontendConflict', severity: 'warning' },
      value: 0,
    });
  });

  it('counts files held back, not problems', () => {
    const p = (file: string, code: 'invalidYaml' | 'unknownKind' | 'duplicate') => ({
      file,
      document: 0,
      line: 1,
      code,
      reason: 'r',
    });
    expect(
      rejectedFiles([
        p('a.yaml', 'invalidYaml'),
        p('a.yaml', 'invalidYaml'),
        p('b.yaml', 'unknownKind'),
        p('c.yaml', 'duplicate'),
      ]),
    ).toBe(1);
  });
});

describe('observe server', () => {
  it('serves /metrics, /healthz and /readyz (503 with the reason until ready), and closes', async () => {
    let ready = false;
    const server = await startObserveServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => (ready ? { ready: true } : { ready: false, reason: 'waiting for X' }),
    });
    try {
      expect(server.address.port).toBeGreaterThan(0);
      expect(await get(`${server.url}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
      expect(await get(`${server.url}/readyz`)).toEqual({
        status: 503,
        body: 'not ready: waiting for X\n',
      });
      ready = true;
      expect(await get(`${server.url}/readyz`)).toEqual({ status: 200, body: 'ready\n' });
      const metrics = await fetch(`${server.url}/metrics`);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
      expect((await get(`${server.url}/nothing`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('says which address is taken', async () => {
    const first = await startObserveServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => ({ ready: true }),
    });
    try {
      await expect(
        startObserveServer({
          host: '127.0.0.1',
          port: first.address.port,
          readiness: () => ({ ready: true }),
        }),
      ).rejects.toThrow(`cannot listen on 127.0.0.1:${first.address.port}: the address is in use`);
    } finally {
      await first.close();
    }
  });
});

const WEB = serviceYaml({
  name: 'web',
  vips: ['192.0.2.200'],
  ports: [{ name: 'http', port: 80, targetPort: 8080 }],
});
const webSlice = (pods: number[]): string =>
  sliceYaml({
    name: 'web-1',
    service: 'web',
    family: 4,
    ports: [{ name: 'http', port: 8080 }],
    endpoints: pods.map((i) => ({ ip: `203.0.113.${10 + i}`, node: 'node-a', pod: `web-${i}` })),
  });
const NODES = documents(
  nodeYaml('node-a', ['198.51.100.2', '2001:db8:a::2']),
  nodeYaml('node-b', ['198.51.100.18']),
);

describe('agent pipeline (fake datapath)', () => {
  let dir: string;
  let fake: FakeDatapath;
  let logs: LogCapture;
  let agent: Agent | undefined;

  const settings = (): AgentSettings => ({
    nodeName: 'node-a',
    uplink: 'eth0',
    netns: 'ns-a',
    manifests: dir,
    leaseNamespace: 'xlb-system',
    leaseName: 'xlb-controller',
    identity: 'node-a',
    pinDir: '/sys/fs/bpf/xlb-fake',
    hashSeed: DEFAULT_HASH_SEED,
    loadBalancerClass: 'xlb.dev/xlb',
    defaultClass: false,
    metricsAddress: { host: '127.0.0.1', port: 0 },
    logLevel: 'debug',
  });

  const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);

  async function start(): Promise<Agent> {
    agent = new Agent(settings(), {
      datapath: fake,
      readUplink: () => ({ mtu: 1450, ipv4: ['192.0.2.99'], ipv6: [] }),
      logger: logs.logger,
      debounceMs: 10,
    });
    await agent.start();
    return agent;
  }

  const metrics = async (): Promise<string> => (await get(`${agent!.observeUrl}/metrics`)).body;
  const modelLines = () => logs.of('model');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'xlb-agent-'));
    fake = new FakeDatapath();
    logs = new LogCapture();
    write('web.yaml', documents(WEB, webSlice([1, 2])));
    write('nodes.yaml', NODES);
  });

  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("opens the datapath with the Node's addresses and the uplink's MTU, and is ready after the first reconcile", async () => {
    fake.outcomes = [new Error('map update failed: E2BIG')];
    fake.retryMs = 30;
    const a = await start();
    expect(fake.opened).toEqual([
      {
        pinDir: '/sys/fs/bpf/xlb-fake',
        netns: 'ns-a',
        uplink: 'eth0',
        settings: {
          hashSeed: DEFAULT_HASH_SEED,
          mtu: 1450,
          nodeIPv4: '198.51.100.2',
          nodeIPv6: '2001:db8:a::2',
        },
      },
    ]);
    expect(fake.lastUnits?.map((u) => [u.key, u.backends.map((b) => b.address)])).toEqual([
      ['default/web:http/TCP/v4', ['203.0.113.11', '203.0.113.12']],
    ]);
    // The first reconcile fails: not ready, and /readyz says why.
    const notReady = await until('a failed reconcile', () => {
      const r = a.readiness();
      return !r.ready && r.reason.includes('failed') && r;
    });
    expect(notReady).toEqual({
      ready: false,
      reason: expect.stringContaining(
        'the first reconcile failed and is retried: map update failed: E2BIG',
      ) as unknown,
    });
    expect(await get(`${a.observeUrl}/readyz`)).toMatchObject({ status: 503 });
    fake.outcomes = ['ok'];
    await until('ready', () => a.readiness().ready);
    expect(await get(`${a.observeUrl}/readyz`)).toEqual({ status: 200, body: 'ready\n' });
    expect(await get(`${a.observeUrl}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
    const text = await metrics();
    expect(metricValue(text, 'xlb_announcements{announce="true",reason="hasEndpoints"}')).toBe(1);
    expect(metricValue(text, 'xlb_model_decisions{reason="noEndpoints",severity="info"}')).toBe(0);
    expect(metricValue(text, 'xlb_model_units')).toBe(1);
    expect(metricValue(text, 'xlb_agent_ready')).toBe(1);
    expect(metricValue(text, 'xlb_standalone_manifest_problems')).toBe(0);
    expect(
      metricValue(text, 'xlb_agent_step_failures_total{step="reconcile"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(logs.lines.find((l) => l.msg.startsWith('datapath reconcile failed'))).toMatchObject({
      level: 'error',
      component: 'agent',
    });
    expect(logs.lines.find((l) => l.msg.startsWith('ready'))).toBeDefined();
  });

  it('logs one line per model decision that changed, and nothing for a change that decides nothing new', async () => {
    write(
      'pending.yaml',
      serviceYaml({
        name: 'pending',
        vips: [],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    const a = await start();
    await until('ready', () => a.readiness().ready);
    expect(modelLines().map((l) => [l.level, l.change ?? l.kind, l.service, l.reason])).toEqual([
      ['info', 'added', 'default/pending', 'noAddress'],
      ['info', 'added', 'default/web', 'hasEndpoints'],
    ]);
    expect(modelLines()[1]).toMatchObject({ address: '192.0.2.200', announce: true, weight: 1 });

    // A label on a Node: a new model, the same decisions.
    const before = { lines: modelLines().length, submissions: fake.submissions.length };
    write(
      'nodes.yaml',
      NODES.replace(
        'kubernetes.io/hostname: node-b',
        'kubernetes.io/hostname: node-b\n    rack: r1',
      ),
    );
    await until(
      'the change to reach the datapath',
      () => fake.submissions.length > before.submissions,
    );
    expect(modelLines()).toHaveLength(before.lines);

    // The pending Service gets its address: one decision resolved, one announcement added.
    write(
      'pending.yaml',
      serviceYaml({
        name: 'pending',
        vips: ['192.0.2.201'],
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      }),
    );
    await until('two more model lines', () => modelLines().length === before.lines + 2);
    expect(
      modelLines()
        .slice(before.lines)
        .map((l) => [l.change, l.service, l.reason, l.announce]),
    ).toEqual([
      ['resolved', 'default/pending', 'noAddress', undefined],
      ['added', 'default/pending', 'noEndpoints', false],
    ]);
    const text = await metrics();
    expect(metricValue(text, 'xlb_announcements{announce="false",reason="noEndpoints"}')).toBe(1);
    expect(metricValue(text, 'xlb_model_decisions{reason="noAddress",severity="info"}')).toBe(0);
  });

  it('a broken file is logged with its name, counted, and changes nothing', async () => {
    const a = await start();
    await until('ready', () => a.readiness().ready);
    const units = JSON.stringify(fake.lastUnits);
    write('web.yaml', documents(WEB, webSlice([1])).replace('endpoints:', 'endpoints: [\n'));
    const line = await until('the problem in the log', () =>
      logs.of('standalone').find((l) => l.file === 'web.yaml' && l.level === 'warn'),
    );
    expect(line.msg).toMatch(/invalid manifest, file ignored/);
    expect(line.code).toBe('invalidYaml');
    expect(metricValue(await metrics(), 'xlb_standalone_manifest_problems')).toBe(1);
    expect(JSON.stringify(fake.lastUnits)).toBe(units);
    write('web.yaml', documents(WEB, webSlice([1])));
    await until('the fix to reach the datapath', () => fake.lastUnits?.[0]?.backends.length === 1);
    expect(metricValue(await metrics(), 'xlb_standalone_manifest_problems')).toBe(0);
  });

  it('an exception in a step is logged and counted, and the next change runs it again', async () => {
    const a = await start();
    await until('ready', () => a.readiness().ready);
    const failures = async () =>
      metricValue(await metrics(), 'xlb_agent_step_failures_total{step="submit"}') ?? 0;
    const before = await failures();
    fake.submitError = new Error('the loop is broken');
    write('web.yaml', documents(WEB, webSlice([1])));
    await until('the failure in the log', () =>
      logs.lines.find(
        (l) => l.msg === "agent step 'submit' failed: the loop is broken" && l.step === 'submit',
      ),
    );
    expect(await failures()).toBe(before + 1);
    expect(a.readiness()).toEqual({ ready: true });
    fake.submitError = undefined;
    write('web.yaml', documents(WEB, webSlice([2])));
    await until(
      'the next change to reach the datapath',
      () => fake.lastUnits?.[0]?.backends[0]?.address === '203.0.113.12',
    );
  });

  it('says once that a new node address in the Node object needs a restart', async () => {
    const a = await start();
    await until('ready', () => a.readiness().ready);
    const warnings = () =>
      logs.lines.filter((l) => l.msg.includes('restart the agent to use them'));
    write('nodes.yaml', NODES.replace('198.51.100.2', '198.51.100.3'));
    const w = await until('the warning', () => warnings()[0]);
    expect(w).toMatchObject({
      level: 'warn',
      running: { nodeIPv4: '198.51.100.2', nodeIPv6: '2001:db8:a::2' },
      node: { nodeIPv4: '198.51.100.3', nodeIPv6: '2001:db8:a::2' },
    });
    // Another change while the address still differs: no second warning.
    const submissions = fake.submissions.length;
    write(
      'nodes.yaml',
      NODES.replace('198.51.100.2', '198.51.100.3').replace('198.51.100.18', '198.51.100.19'),
    );
    await until('the next derivation', () => fake.submissions.length > submissions);
    expect(warnings()).toHaveLength(1);
  });

  it('stops in order and leaves the datapath attached: stop retries, finish, release descriptors, close endpoints', async () => {
    const a = await start();
    await until('ready', () => a.readiness().ready);
    const url = a.observeUrl!;
    await a.stop();
    expect(fake.calls.slice(-2)).toEqual(['stop', 'close']);
    expect(a.readiness()).toEqual({ ready: false, reason: 'shutting down' });
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    const submissions = fake.submissions.length;
    write('web.yaml', documents(WEB, webSlice([1])));
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.submissions).toHaveLength(submissions);
    expect(logs.lines.at(-1)).toMatchObject({ component: 'agent', msg: 'stopped' });
  });

  it('a datapath that cannot be opened fails start with its message and leaves nothing running', async () => {
    fake.openError = new Error('cannot attach XDP to eth0: EBUSY');
    await expect(start()).rejects.toThrow('cannot attach XDP to eth0: EBUSY');
    const url = logs.lines.find((l) => l.msg.startsWith('serving'))!.url as string;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    expect(fake.calls).toEqual(['open']);
  });

  it('a missing manifest directory fails start with a message that names it', async () => {
    rmSync(dir, { recursive: true });
    await expect(start()).rejects.toThrow(`cannot read the manifest directory ${dir}`);
    expect(fake.calls).toEqual([]);
  });
});

// The real agent as a child process, against real traffic through namespaces.
const VIP4 = '192.0.2.200';
const VIP6 = '2001:db8:f::200';

describe('xlb agent end to end (standalone mode)', () => {
  let bed: ClusterBed | undefined;
  let dir = '';
  let pinDir = '';
  let agent: AgentProcess | undefined;
  const sessions: Session[] = [];

  const agentArgs = (): string[] =>
    nodeAgentArgs({ nodeName: 'node-a', netns: bed!.node, manifests: dir, pinDir });

  const slices = (pods: string[]): string =>
    documents(
      ...([4, 6] as const).map((family) =>
        sliceYaml({
          name: `web-v${family}`,
          service: 'web',
          family,
          ports: [
            { name: 'http', port: POD_PORTS.http },
            { name: 'tcp', port: POD_PORTS.tcp },
          ],
          endpoints: pods.map((name) => {
            const pod = bed!.pod(name);
            return { ip: family === 4 ? pod.v4 : pod.v6, node: 'node-a', pod: name };
          }),
        }),
      ),
    );

  /** Pods that answered `count` new HTTP connections to the VIP, in order. */
  async function podsServing(count: number, vip = VIP4): Promise<string[]> {
    const url = vip.includes(':') ? `http://[${vip}]/` : `http://${vip}/`;
    const answers = await Promise.all(Array.from({ length: count }, () => bed!.http(url)));
    const client = vip.includes(':') ? BED.client.v6 : BED.client.v4;
    for (const a of answers) {
      // Direct server return from the VIP, and the pod saw the client itself.
      expect(a).toMatchObject({ status: 200, remote: vip, body: { client } });
    }
    return answers.map((a) => a.body.pod);
  }

  beforeAll(async () => {
    requirePrivileges('agent');
    bed = await ClusterBed.create(['web-1', 'web-2']);
    pinDir = `/sys/fs/bpf/xlb-test-${bed.topo.tag}`;
    dir = mkdtempSync(join(tmpdir(), 'xlb-agent-e2e-'));
    writeFileSync(
      join(dir, 'service.yaml'),
      serviceYaml({
        name: 'web',
        vips: [VIP4, VIP6],
        ports: [
          { name: 'http', port: 80, targetPort: POD_PORTS.http },
          { name: 'tcp', port: 9000, targetPort: POD_PORTS.tcp },
        ],
      }),
    );
    writeFileSync(join(dir, 'slices.yaml'), slices(['web-1', 'web-2']));
    writeFileSync(join(dir, 'nodes.yaml'), nodeYaml('node-a', [BED.node.v4, BED.node.v6]));
  });

  afterAll(() =>
    runCleanup([
      ...sessions.map((s) => ['closing a session', () => s.close()] as const),
      ['stopping the agent', () => agent?.kill()],
      ...pinCleanup(pinDir),
      ['removing the namespaces', () => bed?.destroy()],
      dir === '' ? undefined : ['removing the manifests', () => rmSync(dir, { recursive: true })],
    ]),
  );

  it('becomes ready and balances HTTP over the pods; each pod sees the real client address (IPv4 and IPv6)', async () => {
    agent = await AgentProcess.start(agentArgs());
    await agent.waitReady();
    expect(
      await agent.line(
        'the datapath installed',
        (l) => l.component === 'agent' && l.origin === 'installed',
      ),
    ).toMatchObject({
      settings: { nodeIPv4: BED.node.v4, nodeIPv6: BED.node.v6, mtu: 1500 },
      from: { nodeIPv4: 'Node', nodeIPv6: 'Node', mtu: 'uplink' },
    });
    expect(new Set(await podsServing(16))).toEqual(new Set(['web-1', 'web-2']));
    for (const pod of await podsServing(4, VIP6)) expect(['web-1', 'web-2']).toContain(pod);
    expect(agent.other).toEqual([]);
  });

  it('/metrics shows the datapath service and frontend gauges and the model gauges', async () => {
    const text = await agent!.metrics();
    // Units: (http, tcp) x (IPv4, IPv6); backends: 2 pods in each.
    expect(metricValue(text, 'xlb_services')).toBe(4);
    expect(metricValue(text, 'xlb_frontends')).toBe(4);
    expect(metricValue(text, 'xlb_backends{state="active"}')).toBe(8);
    expect(metricValue(text, 'xlb_announcements{announce="true",reason="hasEndpoints"}')).toBe(2);
    expect(metricValue(text, 'xlb_model_units')).toBe(4);
    expect(metricValue(text, 'xlb_agent_ready')).toBe(1);
    expect(metricValue(text, 'xlb_standalone_manifest_problems')).toBe(0);
    const packets =
      /^xlb_service_packets_total\{service="default\/web",port="80",[^}]*\} (\d+)$/m.exec(text);
    expect(Number(packets?.[1])).toBeGreaterThan(0);
  });

  it('editing the EndpointSlices (a pod removed) sends new connections to the pods left', async () => {
    writeFileSync(join(dir, 'slices.yaml'), slices(['web-2']));
    await until(
      'every new connection to go to web-2',
      async () => (await podsServing(8)).every((p) => p === 'web-2'),
      15_000,
      100,
    );
    expect(metricValue(await agent!.metrics(), 'xlb_backends{state="active"}')).toBe(4);
  });

  it('a broken YAML edit is logged with the file name and changes nothing', async () => {
    writeFileSync(join(dir, 'slices.yaml'), `${slices(['web-1', 'web-2'])}endpoints: [\n`);
    const warning = await agent!.line(
      'the broken file in the log',
      (l) => l.component === 'standalone' && l.file === 'slices.yaml' && l.level === 'warn',
    );
    expect(warning.msg).toMatch(/invalid manifest, file ignored/);
    expect(metricValue(await agent!.metrics(), 'xlb_standalone_manifest_problems')).toBe(1);
    expect((await podsServing(8)).every((p) => p === 'web-2')).toBe(true);
    expect(metricValue(await agent!.metrics(), 'xlb_backends{state="active"}')).toBe(4);

    writeFileSync(join(dir, 'slices.yaml'), slices(['web-1', 'web-2']));
    await until(
      'web-1 to serve again',
      async () => (await podsServing(8)).includes('web-1'),
      15_000,
      100,
    );
    expect(metricValue(await agent!.metrics(), 'xlb_standalone_manifest_problems')).toBe(0);
  });

  it('SIGTERM leaves the datapath serving; a restarted agent adopts it, and sessions opened before keep their pods', async () => {
    for (let i = 0; i < 4; i++) sessions.push(await bed!.session(VIP4, 9000));
    const before = await Promise.all(sessions.map((s, i) => s.send(`before ${i}`)));
    for (const a of before) expect(a.client).toBe(BED.client.v4);

    expect(await agent!.stop('SIGTERM')).toBe(0);
    expect(agent!.lines.at(-1)).toMatchObject({ component: 'agent', msg: 'stopped' });
    expect(agent!.stderr).toBe('');
    expect(bed!.uplinkLink()).toMatch(/ xdp /);
    expect(existsSync(join(pinDir, 'prog_xdp'))).toBe(true);

    // No agent runs: the kernel balances on its own.
    for (const pod of await podsServing(6)) expect(['web-1', 'web-2']).toContain(pod);
    const during = await Promise.all(sessions.map((s, i) => s.send(`during ${i}`)));
    expect(during.map((a) => a.pod)).toEqual(before.map((a) => a.pod));

    agent = await AgentProcess.start(agentArgs());
    await agent.waitReady();
    expect(
      await agent.line(
        'the adoption',
        (l) => l.component === 'agent' && typeof l.origin === 'string',
      ),
    ).toMatchObject({ origin: 'adopted' });
    // The restart rewrote nothing: the maps already held the desired state.
    expect(await agent.line('ready', (l) => l.msg.startsWith('ready'))).toMatchObject({
      writes: 0,
    });
    const after = await Promise.all(sessions.map((s, i) => s.send(`after ${i}`)));
    expect(after.map((a) => [a.pod, a.clientPort])).toEqual(
      before.map((a) => [a.pod, a.clientPort]),
    );
    expect(new Set(await podsServing(16))).toEqual(new Set(['web-1', 'web-2']));
  });

  it('--uninstall detaches the programs and unpins everything', async () => {
    for (const s of sessions.splice(0)) s.close();
    expect(await agent!.stop('SIGINT')).toBe(0);
    const r = runAgentCommand([
      '--uninstall',
      '--uplink',
      'eth0',
      '--netns',
      bed!.node,
      '--pin-dir',
      pinDir,
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^detached XDP program \d+ \(native\) from eth0 in /m);
    expect(r.stdout).toMatch(/^detached tc egress program \d+ from eth0 in /m);
    expect(r.stdout).toContain(`unpinned ${pinDir}\n`);
    expect(bed!.uplinkLink()).not.toMatch(/ xdp /);
    expect(bed!.uplinkTcEgress()).toBe('');
    expect(existsSync(pinDir)).toBe(false);
    await expect(bed!.http(`http://${VIP4}/`)).rejects.toThrow();
    // Again: nothing left to do, and it says so.
    expect(
      runAgentCommand([
        '--uninstall',
        '--uplink',
        'eth0',
        '--netns',
        bed!.node,
        '--pin-dir',
        pinDir,
      ]).stdout,
    ).toMatch(/^xlb: nothing to uninstall/);
  });
});
