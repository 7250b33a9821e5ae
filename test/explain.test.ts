// `xlb explain` held to the kernel: a real datapath, pinned to a temp pin
// directory and programmed by the reconciler; every explanation is checked
// against what bpf_prog_test_run makes the kernel do with the same flow.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import ipaddr from 'ipaddr.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { XlbFlow, XlbFlowKey } from '../control/datapath/abi.js';
import { toDatapathAddress } from '../control/datapath/address.js';
import { createIdMap, DatapathIds, idCapacities } from '../control/datapath/ids.js';
import { loadDatapath, resolveLoad, type Datapath } from '../control/datapath/load.js';
import { mapNames, type L4Proto } from '../control/datapath/maps.js';
import { createInfoMap, currentInfo, ID_MAP_PIN, INFO_PIN } from '../control/datapath/pins.js';
import { DatapathReconciler } from '../control/datapath/reconciler.js';
import {
  explainFlow,
  explainPinned,
  FlowInputError,
  parseFlow,
  PinnedDatapath,
  PinnedDatapathError,
  type ExplainFlow,
  type Explanation,
} from '../control/explain/index.js';
import { configureLogging } from '../control/observe/log.js';
import { distScript } from '../control/paths.js';
import type { BpfMap } from '../native/index.js';
import { ETH_IN, NODE4, NODE6, PEER4, SEED } from './support/datapath-fixture.js';
import { ipv4, ipv6, packet, tcp, udp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';
import { unit } from './support/units.js';
import { runXdp } from './support/xdp-runner.js';

const SETTINGS = { hashSeed: SEED, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: NODE6 };
const VIP4 = '203.0.113.10';
const VIP6 = '2001:db8:10::10';
const PIN_DIR = `/sys/fs/bpf/xlb-test-explain-${process.pid}`;
const CLI = distScript('control/cli/main.js');
const run = promisify(execFile);

const UNITS = [
  unit({
    service: 'default/web',
    vips: [VIP4],
    backends: [
      { address: '10.1.0.1' },
      { address: '10.1.0.2' },
      { address: '10.1.0.3' },
      { address: '10.2.0.1', nodeAddress: PEER4.tx, local: false },
      { address: '10.1.0.9', state: 'terminating' },
    ],
  }),
  unit({
    service: 'default/web',
    vips: [VIP6],
    backends: [{ address: 'fd00:1::1' }, { address: 'fd00:1::2' }, { address: 'fd00:1::3' }],
  }),
  unit({
    service: 'kube-system/dns',
    port: 53,
    protocol: 'UDP',
    vips: [VIP4],
    backends: [
      { address: '10.1.1.1', port: 5353 },
      { address: '10.1.1.2', port: 5353 },
    ],
    affinityTimeoutSeconds: 60,
  }),
  unit({
    service: 'default/admin',
    port: 443,
    vips: [VIP4],
    backends: [{ address: '10.1.2.1', port: 8443 }],
    sourceRanges: ['192.0.2.0/25', '198.51.100.64/26'],
  }),
  unit({
    service: 'default/sticky',
    port: 8080,
    vips: [VIP4],
    backends: [{ address: '10.1.3.1' }, { address: '10.1.3.2' }],
  }),
  unit({
    service: 'default/doomed',
    port: 8081,
    vips: [VIP4],
    backends: [{ address: '10.1.4.1' }],
  }),
  unit({ service: 'default/empty', port: 8082, vips: [VIP4], backends: [] }),
];

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function frame(f: ExplainFlow): Buffer {
  const l3 = f.client.includes(':')
    ? ipv6({ src: f.client, dst: f.vip })
    : ipv4({ src: f.client, dst: f.vip });
  const l4 =
    f.proto === 'TCP'
      ? tcp({ sport: f.clientPort, dport: f.port, flags: ['SYN'] })
      : udp({ sport: f.clientPort, dport: f.port });
  return packet(ETH_IN, l3, l4);
}

const flow = (
  client: string,
  clientPort: number,
  vip: string,
  port: number,
  proto: L4Proto = 'TCP',
): ExplainFlow => ({
  client,
  clientPort,
  vip,
  port,
  proto,
});

describe('xlb explain against the kernel', () => {
  let dp: Datapath;
  let idMap: BpfMap;
  let info: BpfMap;
  let pinned: PinnedDatapath;
  const serviceIds = new Map<string, number>();

  beforeAll(() => {
    requirePrivileges('explain');
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
    const result = reconciler.reconcile(UNITS);
    expect(result.failures).toEqual([]);
    for (const s of reconciler.snapshot()) serviceIds.set(s.key, s.serviceId);
    pinned = PinnedDatapath.open(PIN_DIR);
  });

  afterAll(() => {
    pinned?.close();
    info?.close();
    idMap?.close();
    dp?.close();
    rmSync(PIN_DIR, { recursive: true, force: true });
  });

  /** Sends the flow's packet; returns the kernel's verdict and the backend id its connection table now names. */
  function send(f: ExplainFlow, affinity = false) {
    const before = new Map(dp.maps.drops().map((d) => [d.name, d.packets]));
    const run = runXdp(dp.xdp, frame(f));
    const dropped = dp.maps
      .drops()
      .filter((d) => d.packets !== before.get(d.name))
      .map((d) => d.name);
    const a = toDatapathAddress(f.client);
    const v = toDatapathAddress(f.vip);
    const ct = dp.maps.map('xlb_conntrack').lookup(
      XlbFlowKey.encode({
        src: a.bytes,
        dst: v.bytes,
        sport_be: affinity ? 0 : f.clientPort,
        dport_be: f.port,
        proto: f.proto === 'TCP' ? 6 : 17,
        family: a.family,
      }),
    );
    return {
      run,
      dropped,
      backendId: ct === undefined ? undefined : XlbFlow.decode(ct).backend_id,
    };
  }

  /** The destination a local backend's DNAT wrote, from the kernel's output frame. */
  const dnatTarget = (f: ExplainFlow, out: Buffer): string =>
    ipaddr
      .fromByteArray([...(f.client.includes(':') ? out.subarray(38, 54) : out.subarray(30, 34))])
      .toString();

  function expectForwarded(e: Explanation, f: ExplainFlow, affinity = false): number {
    const v = e.verdict;
    if (v.kind !== 'maglev' && v.kind !== 'conntrack' && v.kind !== 'affinity') {
      throw new Error(`expected a backend for ${JSON.stringify(f)}, got ${JSON.stringify(e)}`);
    }
    const sent = send(f, affinity);
    // A remote backend's packet is tunnelled: the test's namespace has no
    // route to its node, which the FIB lookup after the choice reports.
    expect(sent.dropped).toEqual(v.backend.local ? [] : ['FIB']);
    expect(sent.backendId, JSON.stringify(e)).toBe(v.backend.id);
    if (v.backend.local) {
      expect(sent.run.verdict).toBe('pass');
      expect(dnatTarget(f, sent.run.data)).toBe(v.backend.address);
    }
    return v.backend.id;
  }

  it("predicts the kernel's backend for 200 random flows, then their connection-table hits", () => {
    const rand = rng(7);
    const kinds = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const port = 1024 + Math.floor(rand() * 64000);
      const o = [
        1 + Math.floor(rand() * 254),
        Math.floor(rand() * 256),
        1 + Math.floor(rand() * 254),
      ];
      let f: ExplainFlow;
      if (i % 3 === 0) f = flow(`198.18.${o[1]}.${o[2]}`, port, VIP4, 80);
      else if (i % 3 === 1)
        f = flow(`2001:db8:${o[0]!.toString(16)}::${o[2]!.toString(16)}`, port, VIP6, 80);
      else f = flow(`198.19.${o[1]}.${o[2]}`, port, VIP4, 53, 'UDP');
      const affinity = f.port === 53;
      const first = explainPinned(pinned, f);
      expect(first.verdict.kind, `flow ${i}`).toBe('maglev');
      const id = expectForwarded(first, f, affinity);
      kinds.add(`${f.port}:${id}`);
      const again = explainPinned(pinned, f);
      expect(again.verdict.kind).toBe(affinity ? 'affinity' : 'conntrack');
      expect(
        again.verdict.kind !== 'notVip' && 'backend' in again.verdict && again.verdict.backend.id,
      ).toBe(id);
    }
    // The flows spread over every active backend (the terminating one gets none).
    expect(kinds.size).toBe(4 + 3 + 2);
  });

  it("refuses a source outside the service's source ranges, as the kernel does", () => {
    const outside = flow('192.0.2.200', 40000, VIP4, 443);
    const e = explainPinned(pinned, outside);
    expect(e.verdict).toMatchObject({
      kind: 'sourceRefused',
      action: 'drop',
      ranges: ['192.0.2.0/25', '198.51.100.64/26'],
    });
    const sent = send(outside);
    expect(sent.run.verdict).toBe('drop');
    expect(sent.dropped).toEqual(['SOURCE_RANGE']);
    expect(sent.backendId).toBeUndefined();

    const inside = flow('198.51.100.70', 40000, VIP4, 443);
    const ok = explainPinned(pinned, inside);
    expect(ok.verdict.kind).toBe('maglev');
    expect(ok.steps.join('\n')).toContain('inside 198.51.100.64/26');
    expectForwarded(ok, inside);
  });

  it('says a connection-table entry wins over a changed Maglev table, as the kernel does', () => {
    const sid = serviceIds.get('default/sticky:8080/TCP/v4')!;
    const f = flow('192.0.2.50', 41000, VIP4, 8080);
    const first = explainPinned(pinned, f);
    expect(first.verdict.kind).toBe('maglev');
    const pinnedTo = expectForwarded(first, f);
    // Every slot now names the other backend: only the entry keeps the flow where it was.
    const table = dp.maps.maglevTable(sid)!;
    const other = [...new Set(table)].find((id) => id !== pinnedTo)!;
    dp.maps.installMaglevTable(
      sid,
      table.map(() => other),
    );
    const hit = explainPinned(pinned, f);
    expect(hit.verdict).toMatchObject({ kind: 'conntrack', backend: { id: pinnedTo } });
    expect(hit.verdict.kind === 'conntrack' && hit.verdict.ageSeconds).toBeLessThan(5);
    expectForwarded(hit, f);
    // A new flow of the same client follows the table.
    const fresh = flow('192.0.2.50', 41001, VIP4, 8080);
    const m = explainPinned(pinned, fresh);
    expect(m.verdict).toMatchObject({ kind: 'maglev', backend: { id: other } });
    expectForwarded(m, fresh);
  });

  it('follows session affinity across source ports, and its expiry, as the kernel does', () => {
    const sid = serviceIds.get('kube-system/dns:53/UDP/v4')!;
    const f = flow('192.0.2.60', 5000, VIP4, 53, 'UDP');
    const first = explainPinned(pinned, f);
    expect(first.verdict.kind).toBe('maglev');
    const pinnedTo = expectForwarded(first, f, true);
    const table = dp.maps.maglevTable(sid)!;
    const other = [...new Set(table)].find((id) => id !== pinnedTo)!;
    dp.maps.installMaglevTable(
      sid,
      table.map(() => other),
    );
    // Another source port of the same client: the client's pin holds.
    const second = flow('192.0.2.60', 6000, VIP4, 53, 'UDP');
    const e = explainPinned(pinned, second);
    expect(e.verdict).toMatchObject({
      kind: 'affinity',
      timeoutSeconds: 60,
      backend: { id: pinnedTo },
    });
    expectForwarded(e, second, true);

    // The pin, last seen two minutes ago, has expired: the table decides again.
    const a = toDatapathAddress(f.client);
    const key = XlbFlowKey.encode({
      src: a.bytes,
      dst: toDatapathAddress(VIP4).bytes,
      sport_be: 0,
      dport_be: 53,
      proto: 17,
      family: 4,
    });
    const ct = dp.maps.map('xlb_conntrack');
    const entry = XlbFlow.decode(ct.lookup(key)!);
    ct.update(
      key,
      XlbFlow.encode({ ...entry, last_seen_ns: entry.last_seen_ns - 120_000_000_000n }),
    );
    const third = flow('192.0.2.60', 7000, VIP4, 53, 'UDP');
    const expired = explainPinned(pinned, third);
    expect(expired.verdict).toMatchObject({ kind: 'maglev', backend: { id: other } });
    expect(expired.steps.join('\n')).toMatch(/affinity to backend \d+ expired/);
    expectForwarded(expired, third, true);
  });

  it('says when a service has no backend, as the kernel drops it', () => {
    const empty = flow('192.0.2.70', 42000, VIP4, 8082);
    const e = explainPinned(pinned, empty);
    expect(e.verdict).toMatchObject({ kind: 'noBackend', action: 'drop' });
    expect(['noTable', 'emptyTable']).toContain(e.verdict.kind === 'noBackend' && e.verdict.why);
    let sent = send(empty);
    expect(sent.run.verdict).toBe('drop');
    expect(sent.dropped).toEqual(['NO_BACKEND']);

    // The table still names a backend that went away.
    const sid = serviceIds.get('default/doomed:8081/TCP/v4')!;
    const [gone] = dp.maps.maglevTable(sid)!;
    dp.maps.clearBackend(gone!);
    const doomed = flow('192.0.2.71', 42000, VIP4, 8081);
    const g = explainPinned(pinned, doomed);
    expect(g.verdict).toMatchObject({
      kind: 'noBackend',
      why: 'backendGone',
      backendId: gone,
      m: 251,
    });
    sent = send(doomed);
    expect(sent.run.verdict).toBe('drop');
    expect(sent.dropped).toEqual(['NO_BACKEND']);
  });

  it('tells a VIP port nobody serves from an address that is not a VIP, as the kernel does', () => {
    const noPort = flow('192.0.2.80', 43000, VIP4, 9999);
    const e = explainPinned(pinned, noPort);
    expect(e.verdict).toEqual({ kind: 'noFrontend', action: 'drop' });
    expect(e.steps[0]).toContain('it serves 443/TCP, 53/UDP, 80/TCP');
    let sent = send(noPort);
    expect(sent.run.verdict).toBe('drop');
    expect(sent.dropped).toEqual(['NO_FRONTEND']);

    const notVip = flow('192.0.2.80', 43000, '203.0.113.99', 80);
    expect(explainPinned(pinned, notVip).verdict).toEqual({ kind: 'notVip', action: 'pass' });
    sent = send(notVip);
    expect(sent.run.verdict).toBe('pass');
    expect(sent.run.data.equals(frame(notVip))).toBe(true);
    expect(sent.dropped).toEqual([]);
  });

  it('runs as `xlb explain` with text, JSON and exit codes', async () => {
    const xlb = async (...args: string[]) => {
      try {
        const r = await run(process.execPath, [CLI, 'explain', ...args], { timeout: 20_000 });
        return { status: 0, stdout: r.stdout, stderr: r.stderr };
      } catch (e) {
        const x = e as { code?: number; stdout?: string; stderr?: string };
        return { status: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
      }
    };
    // The parser's other refusals are checked in-process below: a Node start costs a second.
    const bad = [[['192.0.2.1:0', `${VIP4}:80/TCP`], /port 0 is not a port/]] as const;
    // In parallel: each run starts a Node process of its own.
    const [text, json, missing, ...rejected] = await Promise.all([
      xlb('192.0.2.200:40000', `${VIP4}:443/tcp`, '--pin-dir', PIN_DIR),
      xlb('[2001:db8:5::1]:40000', `[${VIP6}]:80/TCP`, '--pin-dir', PIN_DIR, '--json'),
      xlb('192.0.2.1:1000', `${VIP4}:80/TCP`, '--pin-dir', `${PIN_DIR}-absent`),
      ...bad.map(([args]) => xlb(...args, '--pin-dir', PIN_DIR)),
    ]);
    expect(text.stderr).toBe('');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(
      /^192\.0\.2\.200:40000 -> 203\.0\.113\.10:443\/TCP: DROP: refused by source ranges\n {2}1\. /,
    );
    expect(json.status).toBe(0);
    const parsed = JSON.parse(json.stdout) as Explanation;
    expect(parsed.verdict.kind).toBe('maglev');
    expect(parsed.verdict).toEqual(explainPinned(pinned, parsed.flow).verdict);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no xlb datapath is pinned at .*-absent/);
    rejected.forEach((r, i) => {
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(bad[i]![1]);
      expect(r.stdout).toBe('');
    });
  });
});

describe('explain, pure', () => {
  it('rejects input the datapath could never see', () => {
    expect(() => parseFlow('192.0.2.1:100', '2001:db8::1:80/TCP')).toThrow(FlowInputError);
    expect(() => parseFlow('192.0.2.1:100', '[2001:db8::1]:80/TCP')).toThrow(
      /different IP families/,
    );
    expect(() => parseFlow('192.0.2.1:65536', '203.0.113.1:80/TCP')).toThrow(/not a port/);
    expect(() => parseFlow('192.0.2.1:100', '203.0.113.1:80')).toThrow(/VIP:PORT\/PROTO/);
    expect(() => parseFlow('nonsense:1', '203.0.113.1:80/TCP')).toThrow(
      /client 'nonsense' is not an IP address/,
    );
    expect(() => parseFlow('192.0.2.1:1', '203.0.113.1:80/SCTP')).toThrow(
      /'SCTP' is not TCP or UDP/,
    );
    expect(() => parseFlow('192.0.2.1:1', '203.0.113.1:0/TCP')).toThrow(/VIP port 0 is not a port/);
    expect(parseFlow('[2001:DB8::0:1]:100', '[2001:db8::2]:80/udp')).toEqual({
      client: '2001:db8::1',
      clientPort: 100,
      vip: '2001:db8::2',
      port: 80,
      proto: 'UDP',
    });
  });

  it('ignores a connection-table entry of another service and an expired pin', () => {
    const facts = {
      hashSeed: 1,
      vipFilterBit: true,
      vipKnown: true,
      vipFrontends: [],
      service: { id: 3 },
      sourceRanges: [],
      conntrack: { backendId: 1, serviceId: 4, lastSeenNs: 0n },
      nowNs: 10n,
      table: { size: 1, slots: Uint32Array.of(2) },
      backends: new Map([
        [
          1,
          {
            address: '10.0.0.1',
            port: 80,
            nodeAddress: '10.9.0.1',
            state: 'active',
            local: true,
          } as const,
        ],
        [
          2,
          {
            address: '10.0.0.2',
            port: 80,
            nodeAddress: '10.9.0.1',
            state: 'terminating',
            local: false,
          } as const,
        ],
      ]),
    };
    const e = explainFlow(flow('192.0.2.1', 1, VIP4, 80), {
      ...facts,
      service: { id: 3, sourceRanges: false },
    });
    expect(e.verdict).toMatchObject({
      kind: 'maglev',
      slot: 0,
      backend: { id: 2, state: 'terminating' },
    });
    expect(e.steps[1]).toContain('belongs to service 4');
    const gone = explainFlow(flow('192.0.2.1', 1, VIP4, 80), {
      ...facts,
      service: { id: 3, sourceRanges: false },
      conntrack: { backendId: 7, serviceId: 3, lastSeenNs: 0n },
    });
    expect(gone.steps[1]).toContain('backend 7, which is gone');
  });

  it('says nothing is pinned where nothing is', () => {
    expect(() => PinnedDatapath.open('/nonexistent/xlb')).toThrow(PinnedDatapathError);
  });
});
