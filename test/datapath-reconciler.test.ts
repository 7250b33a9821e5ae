// The datapath reconciler against a real datapath loaded in this process:
// units in, maps checked entry by entry, packets through bpf_prog_test_run.
// The id allocator's rules (quarantine, round-robin, persistence) are checked
// on their own first.
import { Writable } from 'node:stream';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  createIdMap,
  DatapathIds,
  idCapacities,
  IdPool,
  IdsExhaustedError,
  QUARANTINE_MS,
} from '../control/datapath/ids.js';
import { loadDatapath, type Datapath, type MapSizes } from '../control/datapath/load.js';
import { ReconcileLoop, type LoopTimer } from '../control/datapath/loop.js';
import type { DatapathMaps } from '../control/datapath/maps.js';
import { registerDatapathMetrics } from '../control/datapath/metrics.js';
import { DatapathReconciler, type ReconcileResult } from '../control/datapath/reconciler.js';
import { maglevSlot } from '../control/datapath/flowhash.js';
import { buildTable } from '../control/maglev/table.js';
import type { Unit } from '../control/model/index.js';
import { configureLogging } from '../control/observe/log.js';
import { registry } from '../control/observe/metrics.js';
import type { BpfMap } from '../native/index.js';
import {
  CLIENT4,
  CLIENT6,
  ETH_IN,
  NODE4,
  NODE6,
  PEER4,
  SEED,
  VIP4,
  VIP6,
  expectPacket,
} from './support/datapath-fixture.js';
import { ipv4, ipv6, packet, payload, tcp } from './support/packet/index.js';
import { requirePrivileges } from './support/privileged.js';
import { countMapWrites } from './support/map-writes.js';
import { MemoryIdStore, unit, withBackends, type BackendSpec } from './support/units.js';

// ---- the id allocator, pure ----

describe('datapath ids', () => {
  it('hands out ids round-robin and holds freed ones in quarantine', () => {
    const pool = new IdPool(3, 1000);
    expect([pool.allocate(), pool.allocate(), pool.allocate()]).toEqual([1, 2, 3]);
    pool.free(2, 0);
    expect(pool.allocate()).toBeUndefined();
    expect(pool.expire(999)).toEqual([]);
    expect(pool.expire(1000)).toEqual([2]);
    expect(pool.allocate()).toBe(2);
    pool.free(1, 5000);
    pool.free(3, 5000);
    pool.expire(7000);
    // Round-robin: 3 comes after 2, although 1 is free too.
    expect(pool.allocate()).toBe(3);
    expect(pool.allocate()).toBe(1);
  });

  it('persists assignments and quarantine, so a restart gives the same ids and reuses none early', () => {
    let now = 1_000_000;
    const store = new MemoryIdStore();
    const caps = { units: 4, backends: 4 };
    const ids = DatapathIds.open(store, caps, { now: () => now });
    ids.beginPass();
    expect(ids.claim('unit', 'default/a:80/TCP/v4')).toEqual({ id: 1, fresh: true });
    expect(ids.claim('unit', 'default/b:80/TCP/v4')).toEqual({ id: 2, fresh: true });
    expect(ids.claim('backend', 'default/a:80/TCP/v4\x0010.0.0.1:80')).toEqual({
      id: 1,
      fresh: true,
    });
    ids.beginPass();
    ids.claim('unit', 'default/a:80/TCP/v4');
    expect(ids.unclaimed('unit')).toEqual([2]);
    ids.release('unit', 2);

    // A new agent over the same records.
    now += 60_000;
    const again = DatapathIds.open(store, caps, { now: () => now });
    again.beginPass();
    expect(again.claim('unit', 'default/a:80/TCP/v4')).toEqual({ id: 1, fresh: false });
    expect(again.claim('backend', 'default/a:80/TCP/v4\x0010.0.0.1:80')).toEqual({
      id: 1,
      fresh: false,
    });
    // Round-robin resumes after the newest id and skips the quarantined 2.
    expect(again.claim('unit', 'default/c:80/TCP/v4').id).toBe(3);
    expect(again.claim('unit', 'default/d:80/TCP/v4').id).toBe(4);
    expect(() => again.claim('unit', 'default/e:80/TCP/v4')).toThrow(IdsExhaustedError);
    try {
      again.claim('unit', 'default/e:80/TCP/v4');
    } catch (e) {
      expect(e).toMatchObject({ reason: 'idsExhausted', kind: 'unit', quarantined: 1 });
      expect((e as Error).message).toMatch(/no free unit id for 'default\/e:80\/TCP\/v4'/);
    }
    // The owner of a quarantined id that comes back gets it back.
    expect(again.claim('unit', 'default/b:80/TCP/v4')).toEqual({ id: 2, fresh: false });

    // Once the quarantine is over, a freed id is free for anyone.
    again.beginPass();
    for (const k of ['a', 'c', 'd']) again.claim('unit', `default/${k}:80/TCP/v4`);
    again.release('unit', 2);
    now += QUARANTINE_MS;
    // The datapath hears of the ids first (to scrub flows naming them); until
    // that works, they stay held.
    expect(() =>
      again.beginPass(() => {
        throw new Error('scrub failed');
      }),
    ).toThrow('scrub failed');
    expect(() => again.claim('unit', 'default/e:80/TCP/v4')).toThrow(IdsExhaustedError);
    const due: unknown[] = [];
    again.beginPass((d) => due.push(d));
    expect(due).toEqual([{ unit: [2], backend: [] }]);
    expect(again.claim('unit', 'default/e:80/TCP/v4')).toEqual({ id: 2, fresh: true });
  });
});

// ---- the reconciler against a loaded datapath ----

const SETTINGS = { hashSeed: SEED, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: NODE6 };

interface Rig extends Disposable {
  dp: Datapath;
  idMap: BpfMap;
  reconciler: DatapathReconciler;
  /** A new reconciler over the same maps and id map: what a restarted agent makes. */
  restart(maps?: DatapathMaps): DatapathReconciler;
}

function rig(options: { sizes?: MapSizes; now?: () => number } = {}): Rig {
  const dp = loadDatapath(SETTINGS, options.sizes);
  const idMap = createIdMap(idCapacities(dp.maps));
  const make = (maps: DatapathMaps = dp.maps): DatapathReconciler =>
    new DatapathReconciler({
      maps,
      ids: DatapathIds.open(idMap, idCapacities(dp.maps), options.now ? { now: options.now } : {}),
      settings: SETTINGS,
    });
  return {
    dp,
    idMap,
    reconciler: make(),
    restart: make,
    [Symbol.dispose]() {
      idMap.close();
      dp.close();
    },
  };
}

/** The table the reconciler must install: Maglev over the active backends, as backend ids. */
function expectedTable(u: Unit, idOf: Record<string, number>): number[] {
  const active = u.backends.filter((b) => b.state === 'active');
  const { order, table } = buildTable(
    active.map((b) => ({ name: b.identity, weight: b.weight })),
    u.tableSize,
  );
  return Array.from(table, (i) => idOf[order[i]!.name]!);
}

function snapshotOf(r: DatapathReconciler, key: string) {
  const s = r.snapshot().find((u) => u.key === key);
  if (s === undefined) throw new Error(`unit ${key} is not programmed`);
  return s;
}

function ok(result: ReconcileResult): ReconcileResult {
  expect(result.failures).toEqual([]);
  expect(result.ok).toBe(true);
  return result;
}

const web4 = unit({
  service: 'default/web',
  vips: [VIP4],
  backends: [
    { address: '203.0.113.101' },
    { address: '203.0.113.102', nodeAddress: NODE4 },
    { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
    { address: '203.0.113.103', state: 'terminating' },
  ],
});
const web6 = unit({
  service: 'default/web',
  vips: [VIP6],
  backends: [{ address: '2001:db8:a0::101' }, { address: '2001:db8:a0::102' }],
});
const dns4 = unit({
  service: 'kube-system/dns',
  port: 53,
  protocol: 'UDP',
  vips: [VIP4],
  backends: [{ address: '203.0.113.110', port: 5353 }],
  affinityTimeoutSeconds: 60,
});
const ranged4 = unit({
  service: 'default/admin',
  port: 443,
  vips: [VIP4],
  backends: [{ address: '203.0.113.111', port: 8443 }],
  sourceRanges: ['192.0.2.0/25', '198.51.100.77/26', '2001:db8:c::/48'],
});
const ranged6 = unit({
  service: 'default/admin',
  port: 443,
  vips: [VIP6],
  backends: [{ address: '2001:db8:a0::111', port: 8443 }],
  sourceRanges: ['192.0.2.0/25'],
});
const ALL = [web4, web6, dns4, ranged4, ranged6];

describe('datapath reconciler', () => {
  beforeAll(() => {
    requirePrivileges('datapath-reconciler');
    configureLogging({ level: 'error' });
  });
  afterEach(() => configureLogging({ destination: undefined, level: 'error' }));
  afterAll(() => configureLogging({ level: 'info' }));

  it('programs VIPs, frontends, backends, Maglev tables and source ranges from units', () => {
    using r = rig();
    const result = ok(r.reconciler.reconcile(ALL));
    expect(result.changes.map((c) => [c.unit, c.change])).toEqual(
      ALL.map((u) => [u.key, 'added']).sort(),
    );
    const m = r.dp.maps;

    expect(new Map([...m.vipEntries()].map((v) => [v.vip, v.frontends]))).toEqual(
      new Map([
        [VIP4, 3],
        [VIP6, 2],
      ]),
    );
    const frontends = new Map(
      [...m.frontendEntries()].map((f) => [
        `${f.frontend.vip} ${f.frontend.port}/${f.frontend.proto}`,
        f.service,
      ]),
    );
    const sid = (u: Unit) => snapshotOf(r.reconciler, u.key).serviceId;
    expect(frontends).toEqual(
      new Map([
        [`${VIP4} 80/TCP`, { id: sid(web4), sourceRanges: false }],
        [`${VIP6} 80/TCP`, { id: sid(web6), sourceRanges: false }],
        [`${VIP4} 53/UDP`, { id: sid(dns4), sourceRanges: false, affinityTimeoutSeconds: 60 }],
        [`${VIP4} 443/TCP`, { id: sid(ranged4), sourceRanges: true }],
        [`${VIP6} 443/TCP`, { id: sid(ranged6), sourceRanges: true }],
      ]),
    );
    expect(new Set(ALL.map(sid)).size).toBe(ALL.length);

    // Backends: local ones without a node address get this node's.
    const backends = new Map([...m.backendEntries()].map((b) => [b.id, b.backend]));
    const ids4 = snapshotOf(r.reconciler, web4.key).backendIds;
    expect(backends.get(ids4['203.0.113.101:8080']!)).toEqual({
      address: '203.0.113.101',
      port: 8080,
      nodeAddress: NODE4,
      state: 'active',
      local: true,
    });
    expect(backends.get(ids4['203.0.113.121:8080']!)).toMatchObject({
      nodeAddress: PEER4.tx,
      local: false,
      state: 'active',
    });
    expect(backends.get(ids4['203.0.113.103:8080']!)).toMatchObject({ state: 'terminating' });
    expect(backends.size).toBe(4 + 2 + 1 + 1 + 1);

    // Tables: Maglev over the active backends only, as ids.
    for (const u of ALL) {
      const s = snapshotOf(r.reconciler, u.key);
      expect(m.maglevTable(s.serviceId), u.key).toEqual(expectedTable(u, s.backendIds));
    }
    expect(m.maglevTable(sid(web4))).not.toContain(ids4['203.0.113.103:8080']);

    // Ranges: the unit's family only (host bits cleared); an IPv6 unit of a
    // Service that lists only IPv4 ranges enforces and admits nobody.
    expect([...m.sourceRangeEntries()].sort((a, b) => a.cidr.localeCompare(b.cidr))).toEqual([
      { serviceId: sid(ranged4), cidr: '192.0.2.0/25' },
      { serviceId: sid(ranged4), cidr: '198.51.100.64/26' },
    ]);
  });

  it('balances a packet of a reconciled service to the backend its Maglev slot names', () => {
    using r = rig();
    ok(r.reconciler.reconcile([web4]));
    const s = snapshotOf(r.reconciler, web4.key);
    const table = r.dp.maps.maglevTable(s.serviceId)!;
    const byId = new Map([...r.dp.maps.backendEntries()].map((b) => [b.id, b.backend]));
    const body = payload('hello');
    const build = (dst: string, dport: number, sport: number) =>
      packet(ETH_IN, ipv4({ src: CLIENT4, dst }), tcp({ sport, dport, flags: ['SYN'] }), body);
    // A client port whose slot holds a local backend.
    let sport = 40000;
    for (; ; sport++) {
      const id =
        table[
          maglevSlot(
            { client: CLIENT4, clientPort: sport, port: 80, proto: 'TCP' },
            SEED,
            table.length,
          )
        ]!;
      if (byId.get(id)!.local) break;
    }
    const id =
      table[
        maglevSlot(
          { client: CLIENT4, clientPort: sport, port: 80, proto: 'TCP' },
          SEED,
          table.length,
        )
      ]!;
    const pod = byId.get(id)!;
    expectPacket(r.dp, build(VIP4, 80, sport), {
      verdict: 'pass',
      output: build(pod.address, pod.port, sport),
      slot: { outcome: 'LOCAL' },
      events: { CONNTRACK_MISS: 1 },
    });
    expect(r.dp.maps.serviceCounters(s.serviceId)).toMatchObject({ packets: 1n, newFlows: 1n });
  });

  it('is idempotent: the same units again write nothing, to any map', () => {
    using r = rig();
    ok(r.reconciler.reconcile(ALL));
    const { result, writes } = countMapWrites(() => r.reconciler.reconcile(ALL));
    ok(result);
    expect(result.writes).toBe(0);
    expect(result.changes).toEqual([]);
    expect(writes).toEqual([]);
  });

  it('swaps one table when the backend set changes, never emptying it', () => {
    using r = rig();
    ok(r.reconciler.reconcile([web4]));
    const sid = snapshotOf(r.reconciler, web4.key).serviceId;
    const grown = withBackends(web4, [
      { address: '203.0.113.101' },
      { address: '203.0.113.102' },
      { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
      { address: '203.0.113.103', state: 'terminating' },
      { address: '203.0.113.104' },
    ]);
    const { result, writes } = countMapWrites(() => r.reconciler.reconcile([grown]));
    expect(ok(result).ops).toEqual({
      allocateId: 1,
      resetCounters: 1,
      setBackend: 1,
      installMaglevTable: 1,
    });
    // Same M: the new table goes into the half the datapath does not read
    // (slots, trailer), then one store flips the header to it; xlb_maglev
    // itself is not written, so no RCU grace period is waited for.
    expect(writes.filter((w) => w.startsWith('xlb_maglev'))).toEqual([
      'xlb_maglev_t.writeMappedWords',
      'xlb_maglev_t.writeMappedWords',
      'xlb_maglev_t.writeMappedWords',
    ]);
    expect(r.dp.maps.maglevTableHeader(sid)).toEqual({ size: web4.tableSize, half: 1 });
    expect(writes.filter((w) => w.includes('delete'))).toEqual([]);
    expect(result.changes).toEqual([
      expect.objectContaining({
        unit: web4.key,
        change: 'changed',
        tableSwapped: true,
        backends: { active: 4, terminating: 1 },
      }),
    ]);
    const s = snapshotOf(r.reconciler, web4.key);
    expect(r.dp.maps.maglevTable(sid)).toEqual(expectedTable(grown, s.backendIds));

    // Draining: the backend stays (its flows go on) but leaves the table.
    const draining = withBackends(web4, [
      { address: '203.0.113.101', state: 'terminating' },
      { address: '203.0.113.102' },
      { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
      { address: '203.0.113.103', state: 'terminating' },
      { address: '203.0.113.104' },
    ]);
    expect(ok(r.reconciler.reconcile([draining])).ops).toEqual({
      setBackend: 1,
      installMaglevTable: 1,
    });
    const drained = s.backendIds['203.0.113.101:8080']!;
    expect(r.dp.maps.maglevTable(sid)).not.toContain(drained);
    expect([...r.dp.maps.backendEntries()].find((b) => b.id === drained)?.backend.state).toBe(
      'terminating',
    );
    expect(r.dp.maps.maglevTableHeader(sid)).toEqual({ size: web4.tableSize, half: 0 });

    // Another M needs another inner map: one swap in xlb_maglev.
    const resized = { ...draining, tableSize: 509 };
    const swap = countMapWrites(() => r.reconciler.reconcile([resized]));
    expect(ok(swap.result).ops).toEqual({ installMaglevTable: 1 });
    expect(swap.writes.filter((w) => w.startsWith('xlb_maglev'))).toEqual([
      'xlb_maglev.updateBatchPacked',
      'xlb_maglev_t.writeMapped',
    ]);
    expect(r.dp.maps.maglevTableHeader(sid)).toEqual({ size: 509, half: 0 });
    expect(r.dp.maps.maglevTable(sid)).toEqual(expectedTable(resized, s.backendIds));
  });

  it('gives a table a new inner map once its backends outgrow the trailer room of the old one', () => {
    using r = rig();
    const one = withBackends(web4, [{ address: '203.0.113.101' }]);
    ok(r.reconciler.reconcile([one]));
    const sid = snapshotOf(r.reconciler, web4.key).serviceId;
    const many = (n: number) =>
      withBackends(
        web4,
        Array.from({ length: n }, (_, i) => ({ address: `203.0.113.${101 + i}` })),
      );
    // Room for twice the trailer plus 8 words: 16 backends still fit in place.
    const inPlace = countMapWrites(() => r.reconciler.reconcile([many(16)]));
    ok(inPlace.result);
    expect(inPlace.writes.filter((w) => w.startsWith('xlb_maglev.'))).toEqual([]);
    const grown = countMapWrites(() => r.reconciler.reconcile([many(17)]));
    ok(grown.result);
    expect(grown.writes.filter((w) => w.startsWith('xlb_maglev.'))).toEqual([
      'xlb_maglev.updateBatchPacked',
    ]);
    const s = snapshotOf(r.reconciler, web4.key);
    expect(r.dp.maps.maglevTable(sid)).toEqual(expectedTable(many(17), s.backendIds));
    expect(new Set(r.dp.maps.maglevTable(sid)).size).toBe(17);
  });

  it('removes a backend after the table that named it, and keeps its id out of use (quarantine)', () => {
    using r = rig();
    ok(r.reconciler.reconcile([web4]));
    const before = snapshotOf(r.reconciler, web4.key);
    const gone = before.backendIds['203.0.113.102:8080']!;
    const fewer = withBackends(web4, [
      { address: '203.0.113.101' },
      { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
      { address: '203.0.113.103', state: 'terminating' },
    ]);
    const result = ok(r.reconciler.reconcile([fewer]));
    expect(result.ops).toEqual({ installMaglevTable: 1, clearBackend: 1, releaseId: 1 });
    expect([...r.dp.maps.backendEntries()].map((b) => b.id)).not.toContain(gone);
    expect(r.dp.maps.maglevTable(before.serviceId)).not.toContain(gone);
    expect(r.reconciler.ids.stats('backend')).toMatchObject({ inUse: 3, quarantined: 1 });

    // A new backend gets a new id, not the one that just went.
    const other = withBackends(web4, [
      ...fewer.backends,
      { address: '203.0.113.105' },
    ] as BackendSpec[]);
    ok(r.reconciler.reconcile([other]));
    const newId = snapshotOf(r.reconciler, web4.key).backendIds['203.0.113.105:8080'];
    expect(newId).toBeDefined();
    expect(newId).not.toBe(gone);
    // The same backend coming back within the quarantine gets its own id again.
    ok(r.reconciler.reconcile([web4]));
    expect(snapshotOf(r.reconciler, web4.key).backendIds['203.0.113.102:8080']).toBe(gone);
  });

  it('scrubs flows that name a freed backend before its quarantine ends, so no one inherits them', () => {
    let clock = 1_000_000;
    using r = rig({ now: () => clock });
    ok(r.reconciler.reconcile([web4]));
    const s = snapshotOf(r.reconciler, web4.key);
    const table = r.dp.maps.maglevTable(s.serviceId)!;
    const gone = s.backendIds['203.0.113.102:8080']!;
    const slotOf = (sport: number) =>
      maglevSlot(
        { client: CLIENT4, clientPort: sport, port: 80, proto: 'TCP' },
        SEED,
        table.length,
      );
    let sport = 40000;
    while (table[slotOf(sport)] !== gone) sport++;
    r.dp.xdp.testRun({
      data: packet(
        ETH_IN,
        ipv4({ src: CLIENT4, dst: VIP4 }),
        tcp({ sport, dport: 80, flags: ['SYN'] }),
      ),
    });
    expect([...r.dp.maps.flows()].map((f) => f.backendId)).toEqual([gone]);

    const fewer = withBackends(web4, [
      { address: '203.0.113.101' },
      { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
      { address: '203.0.113.103', state: 'terminating' },
    ]);
    ok(r.reconciler.reconcile([fewer]));
    // Quarantined: the flow may still name it (the datapath balances it afresh).
    expect([...r.dp.maps.flows()].map((f) => f.backendId)).toEqual([gone]);
    clock += QUARANTINE_MS - 1;
    expect(ok(r.reconciler.reconcile([fewer])).writes).toBe(0);
    clock += 1;
    expect(ok(r.reconciler.reconcile([fewer])).ops).toEqual({ scrubFlows: 1 });
    expect([...r.dp.maps.flows()]).toEqual([]);
    expect(r.reconciler.ids.stats('backend').quarantined).toBe(0);
  });

  it('drops the table of a unit without active backends, and removes a unit in reverse order', () => {
    using r = rig();
    ok(r.reconciler.reconcile([web4, ranged4]));
    const sid = snapshotOf(r.reconciler, ranged4.key).serviceId;
    const idle = withBackends(ranged4, [
      { address: '203.0.113.111', port: 8443, state: 'terminating' },
    ]);
    expect(ok(r.reconciler.reconcile([web4, idle])).ops).toEqual({
      setBackend: 1,
      removeMaglevTable: 1,
    });
    expect(r.dp.maps.maglevTable(sid)).toBeUndefined();

    const calls: string[] = [];
    const spy = new Proxy(r.dp.maps, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (/^(set|delete|clear|install|remove|add|reset)/.test(String(prop)))
            calls.push(String(prop));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const again = r.restart(spy);
    const result = ok(again.reconcile([]));
    expect(calls).toEqual([
      'deleteFrontend',
      'deleteFrontend',
      'deleteVip',
      'deleteSourceRange',
      'deleteSourceRange',
      'removeMaglevTable',
      'clearBackend',
      'clearBackend',
      'clearBackend',
      'clearBackend',
      'clearBackend',
    ]);
    expect(result.changes.map((c) => c.change)).toEqual(['removed', 'removed']);
    const m = r.dp.maps;
    expect([...m.frontendEntries()]).toEqual([]);
    expect([...m.vipEntries()]).toEqual([]);
    expect([...m.sourceRangeEntries()]).toEqual([]);
    expect(m.maglevServiceIds()).toEqual([]);
    expect([...m.backendEntries()]).toEqual([]);
    expect(again.ids.stats('unit')).toMatchObject({ inUse: 0, quarantined: 2 });
    expect(again.ids.stats('backend')).toMatchObject({ inUse: 0, quarantined: 5 });
  });

  it('gives every unit and backend the same id after a restart, so tables come out identical and nothing is written', () => {
    using r = rig();
    ok(r.reconciler.reconcile(ALL));
    const before = r.reconciler.snapshot();
    const tables = before.map((u) => r.dp.maps.maglevTable(u.serviceId));

    const restarted = r.restart();
    const { result, writes } = countMapWrites(() => restarted.reconcile(ALL));
    expect(ok(result).writes).toBe(0);
    expect(writes).toEqual([]);
    expect(restarted.snapshot()).toEqual(before);
    expect(before.map((u) => r.dp.maps.maglevTable(u.serviceId))).toEqual(tables);

    // A change while no agent ran: the next one applies just that.
    const changed = withBackends(web4, [
      { address: '203.0.113.101' },
      { address: '203.0.113.121', nodeAddress: PEER4.tx, local: false },
      { address: '203.0.113.103', state: 'terminating' },
    ]);
    const third = r.restart();
    const desired = [changed, ...ALL.slice(1)];
    expect(ok(third.reconcile(desired)).ops).toEqual({
      installMaglevTable: 1,
      clearBackend: 1,
      releaseId: 1,
    });
    expect(ok(third.reconcile(desired)).writes).toBe(0);
  });

  it('adopts state no id record names (orphans), removes it and keeps its ids out of use', () => {
    using r = rig();
    // An older agent without the id map left a service behind.
    r.dp.maps.setBackend(7, {
      address: '203.0.113.9',
      port: 80,
      nodeAddress: NODE4,
      state: 'active',
      local: true,
    });
    r.dp.maps.installMaglevTable(9, Array(251).fill(7));
    r.dp.maps.setVip('192.0.2.99', 1);
    r.dp.maps.setFrontend({ vip: '192.0.2.99', port: 80, proto: 'TCP' }, { id: 9 });
    const fresh = r.restart();
    const result = ok(fresh.reconcile([web4]));
    expect(result.ops).toMatchObject({
      deleteFrontend: 1,
      deleteVip: 1,
      removeMaglevTable: 1,
      clearBackend: 1,
    });
    expect(snapshotOf(fresh, web4.key).serviceId).not.toBe(9);
    expect(Object.values(snapshotOf(fresh, web4.key).backendIds)).not.toContain(7);
    expect(fresh.ids.stats('unit').quarantined).toBe(1);
  });

  it('never lets two units take turns on one frontend', () => {
    using r = rig();
    const a = unit({
      service: 'team-b/api',
      vips: [VIP4],
      backends: [{ address: '203.0.113.120' }],
    });
    const b = unit({
      service: 'team-a/api',
      vips: [VIP4],
      backends: [{ address: '203.0.113.121' }],
    });
    const first = r.reconciler.reconcile([a]);
    ok(first);
    const second = r.reconciler.reconcile([a, b]);
    expect(second.failures).toEqual([
      expect.objectContaining({ unit: b.key, reason: 'frontendConflict', retryable: false }),
    ]);
    // team-a sorts first, but team-b holds the frontend and keeps it.
    const fe = [...r.dp.maps.frontendEntries()];
    expect(fe.map((f) => f.service.id)).toEqual([snapshotOf(r.reconciler, a.key).serviceId]);
    expect(r.reconciler.reconcile([a, b]).writes).toBe(0);
  });

  it('reports unit ids running out as idsExhausted for that unit, not a crash', () => {
    using r = rig({ sizes: { xlb_maglev: 3, xlb_service_stats: 3 } });
    const units = ['a', 'b', 'c'].map((n) =>
      unit({
        service: `default/${n}`,
        vips: [VIP4],
        port: 80 + n.charCodeAt(0),
        backends: [{ address: '203.0.113.101' }],
      }),
    );
    const result = r.reconciler.reconcile(units);
    expect(result.failures).toEqual([
      expect.objectContaining({ unit: units[2]!.key, reason: 'idsExhausted', retryable: true }),
    ]);
    expect(result.retry).toBe(true);
    expect([...r.dp.maps.frontendEntries()]).toHaveLength(2);
  });

  it('records a failing map operation with its unit and errno, counts and logs it, and retries with backoff until it succeeds', async () => {
    using r = rig();
    const lines: Array<Record<string, unknown>> = [];
    configureLogging({
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _e, done) {
          for (const l of chunk.toString().split('\n').filter(Boolean))
            lines.push(JSON.parse(l) as Record<string, unknown>);
          done();
        },
      }),
    });
    let failuresLeft = 0;
    const flaky = new Proxy(r.dp.maps, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'installMaglevTable') {
          return (...args: unknown[]) => {
            if (failuresLeft-- > 0) {
              throw Object.assign(new Error('update map element: No space left on device'), {
                errno: 28,
                code: 'ENOSPC',
                libbpfLog: '',
              });
            }
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const reconciler = r.restart(flaky);
    const metric = async () =>
      (await registry.getSingleMetric('xlb_datapath_map_errors_total')!.get()).values.find(
        (v) => v.labels.op === 'installMaglevTable' && v.labels.reason === 'ENOSPC',
      )?.value ?? 0;
    const errorsBefore = await metric();

    // A timer that runs only when told.
    const jobs: Array<{ fn: () => void; ms: number }> = [];
    const timer: LoopTimer = {
      set: (fn, ms) => {
        const job = { fn, ms };
        jobs.push(job);
        return job;
      },
      clear: (h) => {
        const i = jobs.indexOf(h as (typeof jobs)[number]);
        if (i >= 0) jobs.splice(i, 1);
      },
    };
    ok(reconciler.reconcile([web4]));
    failuresLeft = 3;
    const results: ReconcileResult[] = [];
    const loop = new ReconcileLoop(reconciler, { timer, onResult: (x) => results.push(x) });
    const tick = (): number => {
      const job = jobs.shift()!;
      job.fn();
      return job.ms;
    };
    loop.update([web4, dns4]);
    expect(tick()).toBe(0);
    const failed = results[0]!;
    expect(failed.ok).toBe(false);
    expect(failed.failures).toEqual([
      {
        unit: dns4.key,
        op: 'installMaglevTable',
        reason: 'ENOSPC',
        message: 'update map element: No space left on device',
        retryable: true,
      },
    ]);
    // The unit that failed got no frontend (it waits for its table); the other is in.
    expect([...r.dp.maps.frontendEntries()].map((f) => f.frontend.port)).toEqual([80]);
    expect(lines.filter((l) => l.reason === 'ENOSPC')).toEqual([
      expect.objectContaining({
        level: 'warn',
        component: 'datapath',
        unit: dns4.key,
        op: 'installMaglevTable',
      }),
    ]);
    expect(lines.filter((l) => l.msg === 'unit added').map((l) => l.unit)).toEqual([web4.key]);
    expect((await metric()) - errorsBefore).toBe(1);

    // Retries: 100 ms, then doubling, until the operation succeeds.
    expect(tick()).toBe(100);
    expect(tick()).toBe(200);
    expect(results.map((x) => x.ok)).toEqual([false, false, false]);
    expect(tick()).toBe(400);
    expect(results.at(-1)!.ok).toBe(true);
    expect(jobs).toEqual([]);
    expect(loop.retryInMs).toBeUndefined();
    expect((await metric()) - errorsBefore).toBe(3);
    expect([...r.dp.maps.frontendEntries()].map((f) => f.frontend.port).sort()).toEqual([53, 80]);
    expect(lines.filter((l) => l.msg === 'unit added').map((l) => l.unit)).toEqual([
      web4.key,
      dns4.key,
    ]);

    // Success reset the backoff: the next failure retries after 100 ms again.
    failuresLeft = 1;
    loop.update([web4, dns4, web6]);
    tick();
    expect(results.at(-1)!.ok).toBe(false);
    expect(tick()).toBe(100);
    expect(results.at(-1)!.ok).toBe(true);
    loop.stop();
  });

  it('reports a real kernel refusal (a full map) and recovers once there is room', () => {
    using r = rig({ sizes: { xlb_frontends: 2 } });
    const units = [80, 81, 82].map((port) =>
      unit({
        service: `default/s${port}`,
        port,
        vips: [VIP4],
        backends: [{ address: '203.0.113.101' }],
      }),
    );
    const result = r.reconciler.reconcile(units);
    expect(result.failures).toEqual([
      expect.objectContaining({
        unit: units[2]!.key,
        op: 'setFrontend',
        reason: 'E2BIG',
        retryable: true,
      }),
    ]);
    // Frontends are added before stale ones go, so the map is still full on
    // this pass; the retry after it finds the room.
    const retried = r.reconciler.reconcile(units.slice(1));
    expect(retried.failures.map((f) => f.reason)).toEqual(['E2BIG']);
    expect(retried.ops).toMatchObject({ deleteFrontend: 1 });
    expect(ok(r.reconciler.reconcile(units.slice(1))).ops).toMatchObject({ setFrontend: 1 });
    expect([...r.dp.maps.frontendEntries()].map((f) => f.frontend.port).sort()).toEqual([81, 82]);
  });

  it('exports datapath counters per service, drops and outcomes at scrape time, and its gauges', async () => {
    using r = rig();
    ok(r.reconciler.reconcile([web4, web6]));
    const stop = registerDatapathMetrics(r.reconciler);
    try {
      const input = packet(
        ETH_IN,
        ipv6({ src: CLIENT6, dst: VIP6 }),
        tcp({ sport: 40000, dport: 80, flags: ['SYN'] }),
      );
      r.dp.xdp.testRun({ data: input });
      r.dp.xdp.testRun({
        data: packet(ETH_IN, ipv4({ src: CLIENT4, dst: VIP4 }), tcp({ sport: 1, dport: 9 })),
      });
      const text = await registry.metrics();
      expect(text).toContain(
        `xlb_service_packets_total{service="default/web",port="80",protocol="TCP",family="IPv6"} 1`,
      );
      expect(text).toContain(
        `xlb_service_bytes_total{service="default/web",port="80",protocol="TCP",family="IPv6"} ${input.length}`,
      );
      expect(text).toContain(
        `xlb_service_new_flows_total{service="default/web",port="80",protocol="TCP",family="IPv4"} 0`,
      );
      expect(text).toContain('xlb_datapath_drops_total{reason="NO_FRONTEND"} 1');
      expect(text).toMatch(/xlb_datapath_outcomes_total\{outcome="LOCAL"\} 1\n/);
      expect(text).toContain('xlb_services 2');
      expect(text).toContain('xlb_frontends 2');
      expect(text).toContain('xlb_backends{state="active"} 5');
      expect(text).toContain('xlb_backends{state="terminating"} 1');
      expect(text).toMatch(/xlb_reconcile_duration_seconds_count \d+/);
    } finally {
      stop();
    }
    expect(await registry.metrics()).not.toContain('service="default/web"');
  });
});
