// `xlb status` against a real datapath pinned to a temp pin directory: the
// services, backends and counters it reports are what the kernel did with
// packets sent through bpf_prog_test_run; the agent's view comes from a real
// /status endpoint; the real CLI prints both, or the maps alone.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createIdMap, DatapathIds, idCapacities } from '../control/datapath/ids.js';
import { loadDatapath, resolveLoad, type Datapath } from '../control/datapath/load.js';
import { mapNames } from '../control/datapath/maps.js';
import { createInfoMap, currentInfo, ID_MAP_PIN, INFO_PIN } from '../control/datapath/pins.js';
import { DatapathReconciler } from '../control/datapath/reconciler.js';
import { PinnedDatapath } from '../control/explain/index.js';
import type { NodeModel } from '../control/model/index.js';
import { configureLogging } from '../control/observe/log.js';
import { startObserveServer, type ObserveServer } from '../control/observe/server.js';
import { distScript } from '../control/paths.js';
import {
  agentStatus,
  collectStatus,
  readDatapathStatus,
  renderStatus,
  type AgentStatus,
  type Status,
} from '../control/status/index.js';
import type { BpfMap } from '../native/index.js';
import { ETH_IN, NODE4, NODE6, SEED } from './support/datapath-fixture.js';
import { ipv4, packet, tcp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';
import { unit } from './support/units.js';
import { runXdp } from './support/xdp-runner.js';

const SETTINGS = { hashSeed: SEED, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: NODE6 };
const VIP4 = '203.0.113.10';
const PIN_DIR = `/sys/fs/bpf/xlb-test-status-${process.pid}`;
const CLI = distScript('control/cli/main.js');
const run = promisify(execFile);

const web = unit({
  service: 'default/web',
  vips: [VIP4],
  backends: [
    { address: '10.1.0.1' },
    { address: '10.1.0.2' },
    { address: '10.1.0.9', state: 'terminating' },
  ],
});
const dns = unit({
  service: 'kube-system/dns',
  port: 53,
  protocol: 'UDP',
  vips: [VIP4],
  backends: [{ address: '10.1.1.1', port: 5353 }],
  affinityTimeoutSeconds: 30,
});
const admin = unit({
  service: 'default/admin',
  port: 443,
  vips: [VIP4],
  backends: [{ address: '10.1.2.1', port: 8443 }],
  sourceRanges: ['192.0.2.0/25'],
});

const MODEL: NodeModel = {
  nodeName: 'node-a',
  units: [web, dns, admin],
  announcements: [],
  decisions: [
    {
      service: 'default/web',
      reason: 'noLocalEndpoints',
      severity: 'info',
      message: 'no endpoint of default/web runs on node-a',
    },
  ],
  nodeDecisions: [],
};

/** Sends `n` packets of one flow; returns their frame length. */
function sendTcp(dp: Datapath, client: string, sport: number, dport: number, n: number): number {
  const f = packet(ETH_IN, ipv4({ src: client, dst: VIP4 }), tcp({ sport, dport, flags: ['ACK'] }));
  for (let i = 0; i < n; i++) runXdp(dp.xdp, f);
  return f.length;
}

async function xlb(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, 'status', ...args], { timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe('xlb status', () => {
  let dp: Datapath;
  let idMap: BpfMap;
  let info: BpfMap;
  let server: ObserveServer;
  let ids: Map<string, number>;
  let webLen = 0;

  beforeAll(async () => {
    requirePrivileges('status');
    configureLogging({ level: 'error' });
    rmSync(PIN_DIR, { recursive: true, force: true });
    dp = loadDatapath(SETTINGS);
    idMap = createIdMap(idCapacities(dp.maps));
    info = createInfoMap(currentInfo(resolveLoad(SETTINGS).config));
    mkdirSync(PIN_DIR);
    for (const name of mapNames) dp.maps.map(name).pin(join(PIN_DIR, name));
    idMap.pin(join(PIN_DIR, ID_MAP_PIN));
    info.pin(join(PIN_DIR, INFO_PIN));
    const reconciler = new DatapathReconciler({
      maps: dp.maps,
      ids: DatapathIds.open(idMap, idCapacities(dp.maps)),
      settings: SETTINGS,
    });
    expect(reconciler.reconcile([web, dns, admin]).failures).toEqual([]);
    ids = new Map(reconciler.snapshot().map((s) => [s.key, s.serviceId]));
    // Three flows of three packets each to web; one refused by admin's ranges.
    for (const sport of [1000, 1001, 1002]) webLen = sendTcp(dp, '198.18.0.1', sport, 80, 3);
    sendTcp(dp, '192.0.2.200', 1000, 443, 1);
    server = await startObserveServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => ({ ready: true }),
      status: () =>
        agentStatus({
          node: 'node-a',
          mode: 'standalone',
          readiness: () => ({ ready: true }),
          leader: () => undefined,
          model: () => MODEL,
          bgpSessions: () => [
            { peer: '192.0.2.254', peerAsn: 65000, localAsn: 65001, state: 'Established' },
          ],
        }),
    });
  });

  afterAll(async () => {
    await server?.close();
    info?.close();
    idMap?.close();
    dp?.close();
    rmSync(PIN_DIR, { recursive: true, force: true });
  });

  it("reads services, backends with their state, and the kernel's counters from the pins", () => {
    using pinned = PinnedDatapath.open(PIN_DIR);
    const s = readDatapathStatus(pinned);
    expect(s.hashSeed).toBe(SEED);
    expect(s.vips).toEqual([{ vip: VIP4, frontends: 3 }]);
    const byKey = (key: string) => s.services.find((x) => x.id === ids.get(key))!;
    const w = byKey(web.key);
    expect(w).toMatchObject({
      frontends: [`${VIP4}:80/TCP`],
      tableSize: 251,
      counters: { packets: 9, bytes: 9 * webLen, newFlows: 3 },
    });
    expect(w.sourceRanges).toBeUndefined();
    expect(w.backends.map((b) => [b.address, b.state, b.local])).toEqual([
      ['10.1.0.1', 'active', true],
      ['10.1.0.2', 'active', true],
      ['10.1.0.9', 'terminating', true],
    ]);
    // Each backend's counters are what the kernel sent it; together, the service's.
    expect(w.backends.reduce((n, b) => n + b.counters.packets, 0)).toBe(9);
    expect(w.backends[2]!.counters.packets).toBe(0);
    expect(byKey(dns.key)).toMatchObject({
      affinityTimeoutSeconds: 30,
      frontends: [`${VIP4}:53/UDP`],
    });
    expect(byKey(admin.key)).toMatchObject({
      sourceRanges: ['192.0.2.0/25'],
      counters: { packets: 0, newFlows: 0 },
    });
    expect(s.otherBackends).toEqual([]);
    expect(s.drops).toEqual([{ reason: 'SOURCE_RANGE', packets: 1 }]);
  });

  it("serves the agent's view on /status, and 404 without a callback", async () => {
    const res = await fetch(`${server.url}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as AgentStatus;
    expect(body).toMatchObject({ node: 'node-a', mode: 'standalone', ready: true, leader: null });
    expect(body.services.map((x) => [x.service, x.frontends])).toEqual([
      ['default/web', [`${VIP4}:80/TCP`]],
      ['kube-system/dns', [`${VIP4}:53/UDP`]],
      ['default/admin', [`${VIP4}:443/TCP`]],
    ]);
    expect(body.decisions[0]?.reason).toBe('noLocalEndpoints');
    const bare = await startObserveServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => ({ ready: true }),
    });
    try {
      const r = await fetch(`${bare.url}/status`);
      expect(r.status).toBe(404);
      expect(await r.text()).toContain('no /status');
    } finally {
      await bare.close();
    }
  });

  it('joins both views, and says when the agent is away', async () => {
    const both = await collectStatus({ pinDir: PIN_DIR, agentUrl: server.url });
    const text = renderStatus(both).join('\n');
    expect(text).toContain('leader: no election (standalone)');
    expect(text).toMatch(
      new RegExp(
        `${ids.get(web.key)}\\s+default/web\\s+${VIP4}:80/TCP\\s+-\\s+-\\s+251\\s+2/3\\s+9\\s`,
      ),
    );
    expect(text).toMatch(/192\.0\.2\.254\s+65000\s+65001\s+Established/);
    expect(text).toContain('no endpoint of default/web runs on node-a');

    const alone: Status = await collectStatus({
      pinDir: PIN_DIR,
      agentUrl: 'http://127.0.0.1:1',
      timeoutMs: 500,
    });
    expect(alone.agent).toBeUndefined();
    expect(alone.agentError).toMatch(/no agent answers at http:\/\/127\.0\.0\.1:1\/status/);
    expect(renderStatus(alone).join('\n')).toContain(
      'agent: unavailable, showing the pinned maps alone',
    );
  });

  it('runs as `xlb status`: text, JSON, and exit 1 with nothing to show', async () => {
    const [text, json, none] = await Promise.all([
      xlb('--pin-dir', PIN_DIR, '--agent', server.url),
      xlb('--pin-dir', PIN_DIR, '--no-agent', '--json'),
      xlb('--pin-dir', `${PIN_DIR}-absent`, '--agent', 'http://127.0.0.1:1'),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`datapath: pinned at ${PIN_DIR}`);
    expect(text.stdout).toMatch(/kube-system\/dns\s+203\.0\.113\.10:53\/UDP\s+30s/);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as Status;
    expect(parsed.agentUrl).toBeUndefined();
    expect(parsed.datapath?.services).toHaveLength(3);
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/datapath: none \(no xlb datapath is pinned at .*-absent/);
    expect(none.stdout).toContain('agent: unavailable');
  });
});
