import { spawnSync } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { bpfObjectPath } from '../control/paths.js';
import { Topology } from '../control/topology/topology.js';
import {
  BpfObject,
  type BpfMap,
  type BpfProgram,
  ifIndex,
  inNetns,
  tc,
  XdpAction,
  xdp,
} from '../native/index.js';
import { u32le } from './support/bytes.js';
import { requirePrivileges } from './support/privileged.js';

function total(map: BpfMap, slot: number): bigint {
  return map.lookupPerCpu(u32le(slot))!.reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
}

/**
 * Real packets: ping from one namespace to another. True when replies came
 * back, false when none did (exit 1); anything else is a broken test setup.
 */
function ping(ns: string, to: string, count = 3): boolean {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', '-q', to],
    {
      encoding: 'utf8',
    },
  );
  if (r.status === 0) return true;
  if (r.status === 1) return false;
  throw new Error(`ping could not run (exit ${r.status}): ${r.error?.message ?? r.stderr}`);
}

function loadFixture(verdict: number): { obj: BpfObject; prog: BpfProgram } {
  const obj = BpfObject.open(bpfObjectPath('test/fixture'));
  obj.setGlobal('fixture_verdict', u32le(verdict));
  obj.load();
  return { obj, prog: obj.program('fixture_xdp') };
}

describe('attaching programs to interfaces in network namespaces', () => {
  let topo: Topology;
  let a: string;
  let b: string;
  const owned: Array<{ close(): void }> = [];

  beforeAll(() => {
    requirePrivileges('native-attach');
    topo = new Topology('xlbt');
    a = topo.addNamespace('a');
    b = topo.addNamespace('b');
    topo.addVeth(
      { ns: a, ifname: 'eth0', addresses: ['192.0.2.1/24', '2001:db8::1/64'] },
      { ns: b, ifname: 'eth0', addresses: ['192.0.2.2/24', '2001:db8::2/64'] },
    );
  });
  afterAll(() => {
    for (const o of owned.reverse()) o.close();
    topo?.destroy();
  });

  it('attaches XDP in native mode, counts real packets, replaces atomically and detaches', () => {
    const pass = loadFixture(XdpAction.pass);
    const drop = loadFixture(XdpAction.drop);
    owned.push(pass.obj, pass.prog, drop.obj, drop.prog);
    using passStats = pass.obj.map('fixture_percpu');
    using dropStats = drop.obj.map('fixture_percpu');

    const ifindex = inNetns(b, () => ifIndex('eth0'));
    inNetns(b, () => xdp.attach(ifindex, pass.prog, 'native'));
    const state = inNetns(b, () => xdp.query(ifindex));
    expect(state).toMatchObject({
      mode: 1,
      progId: pass.prog.info.id,
      nativeProgId: pass.prog.info.id,
    });

    expect(ping(a, '192.0.2.2')).toBe(true);
    expect(total(passStats, 0)).toBeGreaterThanOrEqual(3n);

    // noReplace refuses to displace a program that is already there.
    expect(() =>
      inNetns(b, () => xdp.attach(ifindex, drop.prog, 'native', { noReplace: true })),
    ).toThrow(/EBUSY|EEXIST/);
    inNetns(b, () => xdp.attach(ifindex, drop.prog, 'native', { replacing: pass.prog }));
    expect(inNetns(b, () => xdp.query(ifindex)).progId).toBe(drop.prog.info.id);
    expect(ping(a, '192.0.2.2', 2)).toBe(false);
    expect(total(dropStats, 0)).toBeGreaterThanOrEqual(2n);

    inNetns(b, () => xdp.detach(ifindex, 'native'));
    expect(inNetns(b, () => xdp.query(ifindex)).progId).toBe(0);
    expect(ping(a, '192.0.2.2')).toBe(true);
  });

  it('attaches XDP in generic mode', () => {
    const { obj, prog } = loadFixture(XdpAction.pass);
    owned.push(obj, prog);
    using stats = obj.map('fixture_percpu');
    const ifindex = inNetns(a, () => ifIndex('eth0'));
    inNetns(a, () => xdp.attach(ifindex, prog, 'generic'));
    expect(inNetns(a, () => xdp.query(ifindex))).toMatchObject({
      mode: 2,
      genericProgId: prog.info.id,
    });
    expect(ping(a, '2001:db8::2')).toBe(true);
    expect(total(stats, 0)).toBeGreaterThanOrEqual(3n); // the echo replies arriving at a
    inNetns(a, () => xdp.detach(ifindex, 'generic'));
    expect(inNetns(a, () => xdp.query(ifindex)).progId).toBe(0);
  });

  it('attaches a tc program on clsact egress and detaches it', () => {
    const { obj } = loadFixture(XdpAction.pass);
    owned.push(obj);
    using prog = obj.program('fixture_tc');
    using stats = obj.map('fixture_percpu');
    const ifindex = inNetns(b, () => ifIndex('eth0'));
    const filter = inNetns(b, () => tc.attach(ifindex, 'egress', prog, { handle: 7, priority: 3 }));
    expect(filter).toEqual({ ifindex, direction: 'egress', handle: 7, priority: 3 });
    expect(inNetns(b, () => tc.query(filter))).toBe(prog.info.id);
    // Attaching again at the same place replaces instead of failing.
    inNetns(b, () => tc.attach(ifindex, 'egress', prog, { handle: 7, priority: 3 }));

    expect(ping(a, '192.0.2.2')).toBe(true);
    expect(total(stats, 1)).toBeGreaterThanOrEqual(3n); // b's echo replies leave through egress

    expect(inNetns(b, () => tc.detach(filter))).toBe(true);
    expect(inNetns(b, () => tc.detach(filter))).toBe(false);
    expect(inNetns(b, () => tc.query(filter))).toBe(0);
    expect(inNetns(b, () => tc.removeClsact(ifindex))).toBe(true);
  });

  it('reports a missing interface by name', () => {
    expect(() => inNetns(a, () => ifIndex('nope0'))).toThrow(
      /no interface 'nope0' in this namespace/,
    );
    expect(() => inNetns('xlb-missing-ns', () => 1)).toThrow(
      /open network namespace \/run\/netns\/xlb-missing-ns: No such file/,
    );
  });
});
