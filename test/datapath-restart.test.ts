// The datapath outlives its agent. First the pin lifecycle on its own (install,
// adopt, reload programs over the pinned maps, replace an incompatible
// datapath, uninstall); then real TCP sessions through the namespace testbed
// while the agents crash, the datapath runs alone, and new agents adopt it.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  DatapathLifecycleError,
  openDatapath,
  type OpenedDatapath,
} from '../control/datapath/lifecycle.js';
import { mapNames } from '../control/datapath/maps.js';
import { decodeInfo, encodeInfo, judgePins, type DatapathInfo } from '../control/datapath/pins.js';
import { DatapathReconciler, type ReconcileResult } from '../control/datapath/reconciler.js';
import { backendIdentity, deriveNode, type Unit } from '../control/model/index.js';
import { configureLogging } from '../control/observe/log.js';
import { ADDRESSES, POD_PORTS, Testbed, type Session } from '../control/topology/testbed.js';
import { Topology } from '../control/topology/topology.js';
import { BpfMap, BpfObject, BpfProgram, ifIndex, inNetns, tc, xdp } from '../native/index.js';
import { bpfObjectPath } from '../control/paths.js';
import { node, port, service, slice } from './support/k8s-objects.js';
import { ETH_IN } from './support/datapath-fixture.js';
import { countMapWrites } from './support/map-writes.js';
import { ipv4, packet, tcp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';
import { unit } from './support/units.js';

/** A pin directory of this run only, under the real BPF filesystem. */
const pinPrefix = (): string =>
  `/sys/fs/bpf/xlb-test-${process.pid}-${randomBytes(3).toString('hex')}`;

function removePins(dir: string): void {
  for (const d of [dir, `${dir}-next`, `${dir}-old`]) rmSync(d, { recursive: true, force: true });
}

function ok(result: ReconcileResult): ReconcileResult {
  expect(result.failures).toEqual([]);
  return result;
}

function reconcilerFor(opened: OpenedDatapath, v4: string, v6: string): DatapathReconciler {
  return new DatapathReconciler({
    maps: opened.maps,
    ids: opened.ids,
    settings: { nodeIPv4: v4, nodeIPv6: v6 },
  });
}

describe('what a restarted agent does with a pinned datapath', () => {
  const info = (over: Partial<DatapathInfo> = {}): DatapathInfo => ({
    abiVersion: 3,
    digest: Buffer.alloc(32, 1),
    config: Buffer.from('settings'),
    ...over,
  });
  it('adopts the same datapath, reloads programs for new settings, replaces anything else', () => {
    expect(judgePins(info(), info(), [], [])).toEqual({ action: 'adopt' });
    expect(judgePins(info(), info({ config: Buffer.from('other') }), [], [])).toEqual({
      action: 'reloadPrograms',
      reason: 'the datapath settings changed',
    });
    expect(judgePins(info(), info(), [], ['prog_tc']).action).toBe('reloadPrograms');
    expect(judgePins(info(), info({ abiVersion: 4 }), [], [])).toEqual({
      action: 'replace',
      reason: 'the pinned datapath speaks ABI 3, this agent ABI 4',
    });
    // A rebuilt object may lay maps out differently under the same ABI version.
    expect(judgePins(info(), info({ digest: Buffer.alloc(32, 2) }), [], []).action).toBe('replace');
    expect(judgePins(info(), info(), ['map xlb_vips is not pinned'], []).action).toBe('replace');
    expect(judgePins(undefined, info(), [], []).action).toBe('replace');
    expect(decodeInfo(encodeInfo(info()))).toEqual(info());
  });
});

describe('datapath pin lifecycle', () => {
  const NODE4 = '192.0.2.2';
  const NODE6 = '2001:db8::2';
  const SETTINGS = { hashSeed: 7, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: NODE6 };
  let topo: Topology;
  let ns: string;
  let pinDir: string;
  const handles: OpenedDatapath[] = [];
  const open = (extra: Partial<Parameters<typeof openDatapath>[0]> = {}): OpenedDatapath => {
    const o = openDatapath({ pinDir, settings: SETTINGS, uplink: 'eth0', netns: ns, ...extra });
    handles.push(o);
    return o;
  };
  let uplink = 0;
  const attached = () => inNetns(ns, () => xdp.query(uplink));
  const tcAttached = () =>
    inNetns(ns, () => tc.query({ ifindex: uplink, direction: 'egress', handle: 1, priority: 1 }));
  const web = unit({
    vips: ['198.51.100.10'],
    backends: [{ address: '203.0.113.5' }, { address: '203.0.113.6' }],
  });
  const syn = packet(
    ETH_IN,
    ipv4({ src: '192.0.2.50', dst: '198.51.100.10' }),
    tcp({ sport: 40000, dport: 80, flags: ['SYN'] }),
  );

  beforeAll(() => {
    requirePrivileges('datapath-restart');
    configureLogging({ level: 'error' });
    topo = new Topology('xlbl');
    const peer = topo.addNamespace('peer');
    ns = topo.addNamespace('node');
    topo.addVeth(
      { ns: peer, ifname: 'eth0', addresses: ['192.0.2.1/24'] },
      { ns, ifname: 'eth0', addresses: [`${NODE4}/24`, `${NODE6}/64`] },
    );
    uplink = inNetns(ns, () => ifIndex('eth0'));
    pinDir = `${pinPrefix()}-lc`;
  });
  afterAll(() => {
    for (const h of handles) h.close();
    if (pinDir) removePins(pinDir);
    topo?.destroy();
    configureLogging({ level: 'info' });
  });

  it('installs, adopts, reloads programs over the pinned maps, replaces an incompatible datapath atomically and uninstalls', () => {
    // 1. Nothing pinned: load, pin, attach.
    const first = open();
    expect(first.verdict).toEqual({ kind: 'installed' });
    expect(first.xdpMode).toBe('native');
    expect(readdirSync(pinDir).sort()).toEqual(
      [...mapNames, 'prog_xdp', 'prog_tc', 'xlb_ids', 'xlb_info'].sort(),
    );
    expect(attached().nativeProgId).toBe(first.datapath.xdp.info.id);
    expect(tcAttached()).toBe(first.datapath.tc.info.id);
    ok(reconcilerFor(first, NODE4, NODE6).reconcile([web]));
    expect(first.datapath.xdp.testRun({ data: syn }).retval).toBe(2); // XDP_PASS after DNAT
    expect([...first.maps.flows()]).toHaveLength(1);
    const ids = {
      xdp: first.datapath.xdp.info.id,
      conntrack: first.maps.map('xlb_conntrack').info.id,
      maglev: first.maps.map('xlb_maglev').info.id,
    };
    const table = first.maps.maglevTable(1);
    first.close();
    expect(attached().nativeProgId).toBe(ids.xdp);

    // 2. The same datapath pinned: adopted as it runs, nothing to write.
    const second = open();
    expect(second.verdict).toEqual({ kind: 'adopted' });
    expect(second.datapath.xdp.info.id).toBe(ids.xdp);
    expect(second.maps.map('xlb_conntrack').info.id).toBe(ids.conntrack);
    expect(ok(reconcilerFor(second, NODE4, NODE6).reconcile([web])).writes).toBe(0);
    expect([...second.maps.flows()]).toHaveLength(1);
    second.close();

    // 3. Other settings, same ABI and sizes: new programs over the same maps.
    const third = open({ settings: { ...SETTINGS, mtu: 1400 } });
    expect(third.verdict).toEqual({
      kind: 'upgraded',
      state: 'kept',
      reason: 'the datapath settings changed',
    });
    expect(third.datapath.xdp.info.id).not.toBe(ids.xdp);
    expect(attached().nativeProgId).toBe(third.datapath.xdp.info.id);
    expect(tcAttached()).toBe(third.datapath.tc.info.id);
    expect(third.maps.map('xlb_conntrack').info.id).toBe(ids.conntrack);
    expect([...third.maps.flows()]).toHaveLength(1);
    expect(ok(reconcilerFor(third, NODE4, NODE6).reconcile([web])).writes).toBe(0);
    {
      using pinned = BpfProgram.openPinned(`${pinDir}/prog_xdp`);
      expect(pinned.info.id).toBe(third.datapath.xdp.info.id);
    }
    const kept = { xdp: third.datapath.xdp.info.id, tc: third.datapath.tc.info.id };
    third.close();
    const again = open({ settings: { ...SETTINGS, mtu: 1400 } });
    expect(again.verdict.kind).toBe('adopted');
    again.close();

    // 4. Other map sizes: a new datapath, filled first, then swapped in.
    const sizes = { xlb_conntrack: 1024 };
    const fourth = open({ settings: { ...SETTINGS, mtu: 1400 }, sizes });
    expect(fourth.verdict).toMatchObject({ kind: 'upgraded', state: 'reinstalled' });
    expect((fourth.verdict as { reason: string }).reason).toMatch(
      /xlb_conntrack has 262144 entries, 1024 wanted/,
    );
    expect(fourth.needsActivation).toBe(true);
    // Until activation the old datapath keeps running.
    expect(attached().nativeProgId).toBe(kept.xdp);
    expect(fourth.maps.map('xlb_conntrack').info.id).not.toBe(ids.conntrack);
    const r4 = reconcilerFor(fourth, NODE4, NODE6);
    const filled = ok(r4.reconcile([web]));
    expect(filled.writes).toBeGreaterThan(0);
    // The id map carried over: the same ids, the same table.
    expect(r4.snapshot()[0]!.serviceId).toBe(1);
    expect(fourth.maps.maglevTable(1)).toEqual(table);
    expect([...fourth.maps.flows()]).toHaveLength(0);
    fourth.activate();
    expect(fourth.needsActivation).toBe(false);
    // Same ABI: the established flow came along.
    expect([...fourth.maps.flows()]).toHaveLength(1);
    expect(attached().nativeProgId).toBe(fourth.datapath.xdp.info.id);
    expect(tcAttached()).toBe(fourth.datapath.tc.info.id);
    {
      using pinned = BpfMap.openPinned(`${pinDir}/xlb_conntrack`);
      expect(pinned.info.id).toBe(fourth.maps.map('xlb_conntrack').info.id);
    }
    expect(existsSync(`${pinDir}-next`) || existsSync(`${pinDir}-old`)).toBe(false);
    fourth.close();
    const fifth = open({ settings: { ...SETTINGS, mtu: 1400 }, sizes });
    expect(fifth.verdict.kind).toBe('adopted');

    // 5. Uninstall: programs off the uplink, pins gone.
    fifth.close({ detach: true });
    expect(attached().progId).toBe(0);
    expect(tcAttached()).toBe(0);
    expect(existsSync(pinDir)).toBe(false);
  });

  it('refuses pin directories it cannot use, and a missing uplink, with a reason', () => {
    const attempt = (o: Partial<Parameters<typeof openDatapath>[0]>) => {
      try {
        open(o);
      } catch (e) {
        return e;
      }
      throw new Error('openDatapath did not refuse');
    };
    expect(attempt({ pinDir: '/tmp/xlb-not-bpffs' })).toMatchObject({
      name: 'DatapathLifecycleError',
      reason: 'noBpffs',
    });
    expect(attempt({ pinDir: '/sys/fs/bpf/xlb.test' })).toMatchObject({ reason: 'badPinDir' });
    const noUplink = attempt({ pinDir: `${pinPrefix()}-x`, uplink: 'nosuch0' });
    expect(noUplink).toBeInstanceOf(DatapathLifecycleError);
    expect((noUplink as Error).message).toMatch(/no interface 'nosuch0' in network namespace/);

    // Someone else's XDP program on the uplink is not replaced, and nothing stays pinned.
    const foreign = (() => {
      using obj = BpfObject.open(bpfObjectPath('test/veth_pass'));
      obj.load();
      return obj.program('veth_pass');
    })();
    try {
      inNetns(ns, () => xdp.attach(uplink, foreign, 'native'));
      const busyDir = `${pinPrefix()}-busy`;
      expect(attempt({ pinDir: busyDir })).toMatchObject({ reason: 'uplinkBusy' });
      expect(existsSync(busyDir)).toBe(false);
      expect(attached().nativeProgId).toBe(foreign.info.id);
    } finally {
      inNetns(ns, () => xdp.detach(uplink, 'native'));
      foreign.close();
    }
  });
});

// ---- agents crash and restart while TCP sessions go on ----

const VIP4 = '192.0.2.210';
const VIP6 = '2001:db8:f::210';
const PODS = [
  { name: 'shop-a1', node: 'a' },
  { name: 'shop-a2', node: 'a' },
  { name: 'shop-b1', node: 'b' },
  { name: 'shop-b2', node: 'b' },
] as const;

function nodesOf(bed: Testbed) {
  return (['a', 'b'] as const).map((n) =>
    node({ name: `node-${n}`, internal: [bed.nodes[n].v4, bed.nodes[n].v6] }),
  );
}

/** What each node's agent derives from the cluster: a dual-stack Service over the pods. */
function desiredUnits(bed: Testbed, nodeName: 'a' | 'b', pods: readonly string[]): Unit[] {
  const endpoints = (family: 4 | 6) =>
    pods.map((name) => {
      const p = bed.pod(name);
      return { ip: family === 4 ? p.v4 : p.v6, node: `node-${p.node}` };
    });
  const ports = [{ port: POD_PORTS.tcp }];
  const model = deriveNode({
    services: [
      service({
        name: 'shop',
        ips: [VIP4, VIP6],
        ports: [port(9000, { targetPort: POD_PORTS.tcp })],
      }),
    ],
    endpointSlices: [
      slice({ service: 'shop', addressType: 'IPv4', ports, endpoints: endpoints(4) }),
      slice({ service: 'shop', addressType: 'IPv6', ports, endpoints: endpoints(6) }),
    ],
    nodes: nodesOf(bed),
    nodeName: `node-${nodeName}`,
  });
  return model.units;
}

interface Open {
  session: Session;
  pod: string;
  family: 4 | 6;
}

describe('agent restarts with the datapath running', () => {
  let bed: Testbed;
  const agents = {} as Record<'a' | 'b', DatapathReconciler>;
  let pods: string[] = PODS.map((p) => p.name);
  const sessions: Open[] = [];

  const reconcileAll = (): Record<'a' | 'b', ReconcileResult> => ({
    a: agents.a.reconcile(desiredUnits(bed, 'a', pods)),
    b: agents.b.reconcile(desiredUnits(bed, 'b', pods)),
  });
  const startAgents = (): void => {
    for (const n of ['a', 'b'] as const) {
      const opened = bed.startAgent(n);
      expect(opened.verdict).toEqual({ kind: 'adopted' });
      agents[n] = reconcilerFor(opened, bed.nodes[n].v4, bed.nodes[n].v6);
    }
  };
  const tables = (n: 'a' | 'b') =>
    agents[n]
      .snapshot()
      .map((u) => ({ ...u, table: bed.nodes[n].datapath.maps.maglevTable(u.serviceId) }));
  const nodeOfPod = (name: string): 'a' | 'b' => bed.pod(name).node;
  /** Every open session still talks to the pod it first reached. */
  const allStillServed = async (text: string): Promise<void> => {
    const answers = await Promise.all(sessions.map((s) => s.session.send(text)));
    expect(answers.map((a) => a.pod)).toEqual(sessions.map((s) => s.pod));
    for (const [i, a] of answers.entries()) {
      expect(a.client).toBe(sessions[i]!.family === 4 ? ADDRESSES.client.v4 : ADDRESSES.client.v6);
    }
  };
  const newConnection = async (family: 4 | 6): Promise<string> => {
    const s = await bed.session(family === 4 ? VIP4 : VIP6, 9000);
    try {
      return (await s.send('new')).pod;
    } finally {
      s.close();
    }
  };

  beforeAll(async () => {
    requirePrivileges('datapath-restart');
    configureLogging({ level: 'error' });
    bed = await Testbed.create({ pods: PODS, pinDirPrefix: pinPrefix() });
    for (const n of ['a', 'b'] as const) {
      expect(bed.nodes[n].opened!.verdict).toEqual({ kind: 'installed' });
      agents[n] = reconcilerFor(bed.nodes[n].opened!, bed.nodes[n].v4, bed.nodes[n].v6);
    }
    const first = reconcileAll();
    for (const r of Object.values(first)) expect(ok(r).changes).toHaveLength(2);
  });
  afterAll(() => {
    for (const s of sessions) s.session.close();
    bed?.destroy();
    configureLogging({ level: 'info' });
  });

  it('serves long-lived sessions through a VIP to pods on both nodes (local DNAT and tunnel)', async () => {
    // Opens connections until both nodes serve some, in both families.
    for (const family of [4, 6] as const) {
      const seen = { a: 0, b: 0 };
      for (let i = 0; i < 24 && (seen.a < 2 || seen.b < 2); i++) {
        const session = await bed.session(family === 4 ? VIP4 : VIP6, 9000);
        const answer = await session.send(`hello ${i}`);
        sessions.push({ session, pod: answer.pod, family });
        seen[nodeOfPod(answer.pod)]++;
      }
      expect(seen.a).toBeGreaterThanOrEqual(2);
      expect(seen.b).toBeGreaterThanOrEqual(2);
    }
    await allStillServed('steady');
    const outcomes = bed.nodes.a.datapath.maps.outcomes();
    const count = (name: string) => outcomes.find((r) => r.name === name)!.packets;
    expect(count('LOCAL')).toBeGreaterThan(0n);
    expect(count('ENCAP_TX') + count('ENCAP_REDIRECT') + count('ENCAP_KERNEL')).toBeGreaterThan(0n);
  });

  it('keeps balancing with no agent running, then a new agent adopts it and writes nothing', async () => {
    const before = { a: tables('a'), b: tables('b') };
    const progIds = {
      a: bed.nodes.a.datapath.xdp.info.id,
      b: bed.nodes.b.datapath.xdp.info.id,
    };
    bed.crashAgent('a');
    bed.crashAgent('b');
    expect(() => bed.nodes.a.datapath.maps.outcomes()).toThrow(/closed/);
    for (const n of ['a', 'b'] as const) {
      expect(
        inNetns(bed.nodes[n].ns, () => xdp.query(bed.nodes[n].uplinkIfindex)).nativeProgId,
      ).toBe(progIds[n]);
    }
    // No agent: established sessions and new connections go on.
    await allStillServed('no agent');
    expect(PODS.map((p) => p.name)).toContain(await newConnection(4));
    expect(PODS.map((p) => p.name)).toContain(await newConnection(6));

    // Adopting (open, read the maps, reconcile the same units) writes no map at all.
    const { result: adopted, writes } = countMapWrites(() => {
      startAgents();
      return reconcileAll();
    });
    expect(writes).toEqual([]);
    for (const r of Object.values(adopted)) {
      expect(ok(r).writes).toBe(0);
      expect(r.changes).toEqual([]);
    }
    expect({ a: tables('a'), b: tables('b') }).toEqual(before);
    await allStillServed('adopted');
    for (let i = 0; i < 4; i++) expect(PODS.map((p) => p.name)).toContain(await newConnection(4));
  });

  it('applies only what changed while no agent ran', async () => {
    // A pod goes away while the agents are down. A pod that leaves ends its
    // connections; the test closes them itself.
    const counts = new Map(pods.map((p) => [p, sessions.filter((s) => s.pod === p).length]));
    const gone = [...counts].sort((x, y) => x[1] - y[1])[0]![0];
    for (const s of sessions.filter((x) => x.pod === gone)) s.session.close();
    sessions.splice(0, sessions.length, ...sessions.filter((x) => x.pod !== gone));
    const before = { a: tables('a'), b: tables('b') };

    bed.crashAgent('a');
    bed.crashAgent('b');
    pods = pods.filter((p) => p !== gone);
    await allStillServed('still no agent');

    startAgents();
    const applied = reconcileAll();
    for (const n of ['a', 'b'] as const) {
      const r = ok(applied[n]);
      // Per family: one table swap without the pod, its backend cleared, its id to quarantine.
      expect(r.ops).toEqual({ installMaglevTable: 2, clearBackend: 2, releaseId: 2 });
      expect(r.changes.map((c) => [c.unit, c.change, c.tableSwapped])).toEqual([
        ['default/shop:9000/TCP/v4', 'changed', true],
        ['default/shop:9000/TCP/v6', 'changed', true],
      ]);
      // Every other id is what it was.
      const after = tables(n);
      for (const [i, u] of after.entries()) {
        const was = before[n][i]!;
        expect(u.serviceId).toBe(was.serviceId);
        const goneIds = new Set([
          backendIdentity(4, bed.pod(gone).v4, POD_PORTS.tcp),
          backendIdentity(6, bed.pod(gone).v6, POD_PORTS.tcp),
        ]);
        const kept = Object.fromEntries(
          Object.entries(was.backendIds).filter(([identity]) => !goneIds.has(identity)),
        );
        expect(Object.keys(kept).length).toBe(Object.keys(was.backendIds).length - 1);
        expect(u.backendIds).toEqual(kept);
        expect(u.table).not.toEqual(was.table);
      }
    }
    await allStillServed('after the change');
    for (let i = 0; i < 6; i++) expect(await newConnection(i % 2 === 0 ? 4 : 6)).not.toBe(gone);
  });
  it('upgrades under live sessions: a replaced datapath takes the flows along and swaps in atomically', async () => {
    const before = { a: tables('a'), b: tables('b') };
    const old = { a: bed.nodes.a.datapath.xdp.info.id, b: bed.nodes.b.datapath.xdp.info.id };
    bed.crashAgent('a');
    bed.crashAgent('b');
    for (const n of ['a', 'b'] as const) {
      // Other map sizes: the pinned datapath cannot be reused.
      const opened = bed.startAgent(n, { sizes: { xlb_conntrack: 65536, xlb_reverse: 65536 } });
      expect(opened.verdict).toMatchObject({ kind: 'upgraded', state: 'reinstalled' });
      const ns = bed.nodes[n].ns;
      const ifindex = bed.nodes[n].uplinkIfindex;
      agents[n] = reconcilerFor(opened, bed.nodes[n].v4, bed.nodes[n].v6);
      ok(agents[n].reconcile(desiredUnits(bed, n, pods)));
      // Filled, not yet in service: the old programs still run.
      expect(inNetns(ns, () => xdp.query(ifindex)).nativeProgId).toBe(old[n]);
      expect([...opened.maps.flows()]).toEqual([]);
      opened.activate();
      expect(inNetns(ns, () => xdp.query(ifindex)).nativeProgId).toBe(opened.datapath.xdp.info.id);
      // Every session enters at node-a: its flow was copied into the new table.
      if (n === 'a') {
        const flows = [...opened.maps.flows()].filter((f) => f.port === 9000);
        expect(flows.length).toBeGreaterThanOrEqual(sessions.length);
      }
    }
    // The id map carried over: the same ids, the same tables, on new maps.
    expect({ a: tables('a'), b: tables('b') }).toEqual(before);
    await allStillServed('upgraded');
    for (let i = 0; i < 4; i++) expect(pods).toContain(await newConnection(i % 2 === 0 ? 4 : 6));
  });
});
