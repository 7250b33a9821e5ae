// What makes the reconciler scale: claims that persist between passes, a
// pass that looks only at units that are not the very objects it applied,
// compact tables (a digest and the ids they name, written after the last
// slot so a restarted agent need not read or rebuild them), tables built on
// worker threads, and one flow-cache bump per pass. Pure parts first, then
// against a datapath loaded in this process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Pipeline } from '../control/agent/pipeline.js';
import { createIdMap, DatapathIds, idCapacities } from '../control/datapath/ids.js';
import { loadDatapath, type Datapath } from '../control/datapath/load.js';
import { buildTables, type TableJob } from '../control/datapath/maglev-workers.js';
import type { DatapathMaps } from '../control/datapath/maps.js';
import { readTrailer, tableTrailer } from '../control/datapath/plan.js';
import { DatapathReconciler, type ReconcileResult } from '../control/datapath/reconciler.js';
import { buildTable } from '../control/maglev/table.js';
import type { Unit } from '../control/model/index.js';
import { configureLogging } from '../control/observe/log.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import type { BpfMap } from '../native/index.js';
import { NODE4, NODE6, SEED } from './support/datapath-fixture.js';
import { node, port, service, slice } from './support/k8s-objects.js';
import { countMapWrites } from './support/map-writes.js';
import { requirePrivileges } from './support/privileged.js';
import { MemoryIdStore, unit, withBackends } from './support/units.js';

// ---- pure ----

describe('datapath ids, incremental', () => {
  it('keeps claims between passes; what is unclaimed is known without asking every owner', () => {
    let now = 1_000_000;
    const store = new MemoryIdStore();
    const ids = DatapathIds.open(store, { units: 8, backends: 8 }, { now: () => now });
    const a = ids.claim('unit', 'default/a:80/TCP/v4');
    const b = ids.claim('backend', 'default/a:80/TCP/v4\x0010.0.0.1:80', a.id);
    ids.expireDue();
    expect(ids.unclaimed('unit')).toEqual([]);
    expect(ids.isClaimed('backend', b.id)).toBe(true);
    ids.unclaim('backend', b.id);
    expect(ids.unclaimed('backend')).toEqual([b.id]);
    expect(ids.isClaimed('backend', b.id)).toBe(false);
    // Claimed again (its owner is wanted after all): nothing to release.
    expect(ids.claim('backend', 'default/a:80/TCP/v4\x0010.0.0.1:80', a.id)).toEqual({
      id: b.id,
      fresh: false,
    });
    expect(ids.unclaimed('backend')).toEqual([]);
    ids.unclaim('backend', b.id);
    ids.release('backend', b.id);
    expect(ids.stats('backend')).toMatchObject({ inUse: 0, quarantined: 1 });

    // A new agent over the same records: everything unclaimed until claimed;
    // the records' keys are the ones an older agent wrote (same bytes).
    const again = DatapathIds.open(store, { units: 8, backends: 8 }, { now: () => now });
    expect(again.unclaimed('unit')).toEqual([a.id]);
    expect(again.peek('unit', 'default/a:80/TCP/v4')).toBe(a.id);
    expect(again.claim('backend', 'default/a:80/TCP/v4\x0010.0.0.1:80', a.id)).toEqual({
      id: b.id,
      fresh: false,
    });
    again.dropClaims();
    expect(again.unclaimed('backend')).toEqual([b.id]);
    now += 10 * 60 * 1000;
    again.unclaim('backend', b.id);
    again.release('backend', b.id);
    now += 10 * 60 * 1000;
    const due: unknown[] = [];
    again.expireDue((d) => due.push(d));
    expect(due).toEqual([{ unit: [], backend: [b.id] }]);
    expect(again.stats('backend')).toMatchObject({ inUse: 0, quarantined: 0 });
  });
});

describe('Maglev tables on worker threads', () => {
  it('builds the same tables as buildTable, each once, whoever builds it', () => {
    const jobs: TableJob[] = Array.from({ length: 150 }, (_, i) => ({
      size: i % 3 === 0 ? 251 : 1021,
      names: Array.from({ length: 1 + (i % 7) }, (_, j) => `10.0.${i}.${j}:8080`).sort(),
      weights: Array.from({ length: 1 + (i % 7) }, (_, j) => 1 + (j % 2)),
    }));
    jobs.push({ size: 250, names: ['x'], weights: [1] });
    // Big enough that a worker, once started, takes a share.
    for (let i = 0; i < 150; i++)
      jobs.push({ size: 16381, names: [`10.1.${i}.1:80`, `10.1.${i}.2:80`], weights: [1, 1] });
    for (const workers of [0, 1, 2]) {
      const seen = new Set<number>();
      const stats = { here: 0, workers: 0 };
      for (const [i, outcome] of buildTables(jobs, { workers, stats })) {
        expect(seen.has(i)).toBe(false);
        seen.add(i);
        const job = jobs[i]!;
        if (job.size === 250) {
          expect(outcome).toEqual({ error: expect.stringMatching(/prime/) as unknown });
          continue;
        }
        const want = buildTable(
          job.names.map((name, k) => ({ name, weight: job.weights[k]! })),
          job.size,
        ).table;
        expect('table' in outcome && [...outcome.table]).toEqual([...want]);
      }
      expect(seen.size).toBe(jobs.length);
      expect(stats.here + stats.workers).toBe(jobs.length);
      if (workers === 0) expect(stats.workers).toBe(0);
      else expect(stats.workers).toBeGreaterThan(0);
    }
  });

  it('records what a table was built from in words after its last slot', () => {
    const digest = `in:${'0123456789abcdef'.repeat(2)}`;
    const trailer = tableTrailer(digest, [3, 9, 12]);
    expect(readTrailer(trailer)).toEqual({ digest, ids: [3, 9, 12] });
    expect(readTrailer(trailer.subarray(0, 7))).toBeUndefined();
    expect(readTrailer(new Uint32Array(9))).toBeUndefined();
  });
});

describe('agent pipeline', () => {
  it('submits the whole desired state after every burst of changes, derived only where it changed', async () => {
    const store = new ClusterStore();
    store.replaceAll({
      Service: [
        service({ name: 'a', ips: ['192.0.2.1'], ports: [port(80)] }),
        service({ name: 'b', ips: ['192.0.2.2'], ports: [port(80)] }),
      ],
      EndpointSlice: [
        slice({ service: 'a', endpoints: [{ ip: '10.0.0.1', node: 'n1' }] }),
        slice({ service: 'b', endpoints: [{ ip: '10.0.0.2', node: 'n1' }] }),
      ],
      Node: [node({ name: 'n1', internal: ['198.51.100.1'] })],
    });
    await Promise.resolve();
    const submitted: (readonly Unit[])[] = [];
    const derived: number[] = [];
    const pipeline = new Pipeline({
      store,
      nodeName: 'n1',
      sink: { submit: (units) => submitted.push(units) },
      onModel: (u) => derived.push(u.derived),
    });
    pipeline.start();
    expect(submitted.map((u) => u.map((x) => x.key))).toEqual([
      ['default/a:80/TCP/v4', 'default/b:80/TCP/v4'],
    ]);
    store.apply(
      'EndpointSlice',
      slice({
        service: 'b',
        endpoints: [
          { ip: '10.0.0.2', node: 'n1' },
          { ip: '10.0.0.3', node: 'n1' },
        ],
      }),
    );
    await Promise.resolve();
    expect(derived).toEqual([2, 1]);
    const [before, after] = submitted;
    expect(after![0]).toBe(before![0]);
    expect(after![1]!.backends.map((b) => b.address)).toEqual(['10.0.0.2', '10.0.0.3']);
    pipeline.stop();
    store.delete('Service', 'default/a');
    await Promise.resolve();
    expect(submitted).toHaveLength(2);
  });
});

// ---- against a loaded datapath ----

const SETTINGS = { hashSeed: SEED, mtu: 1500, nodeIPv4: NODE4, nodeIPv6: NODE6 };

interface Rig extends Disposable {
  dp: Datapath;
  idMap: BpfMap;
  reconciler: DatapathReconciler;
  restart(maps?: DatapathMaps): DatapathReconciler;
}

function rig(): Rig {
  const dp = loadDatapath(SETTINGS, { xlb_vips: 8192 });
  const idMap = createIdMap(idCapacities(dp.maps));
  const make = (maps: DatapathMaps = dp.maps): DatapathReconciler =>
    new DatapathReconciler({
      maps,
      ids: DatapathIds.open(idMap, idCapacities(dp.maps)),
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

function ok(result: ReconcileResult): ReconcileResult {
  expect(result.failures).toEqual([]);
  return result;
}

/** n units of one service each, sorted by key as the model hands them out. */
function many(n: number, backends = 3): Unit[] {
  return Array.from({ length: n }, (_, i) =>
    unit({
      service: `bench/s${String(i).padStart(4, '0')}`,
      vips: [`198.18.${i >> 8}.${i & 255}`],
      backends: Array.from({ length: backends }, (_, j) => ({
        address: `10.${i >> 8}.${i & 255}.${j + 1}`,
      })),
    }),
  );
}

function expectedTable(u: Unit, idOf: Record<string, number>): number[] {
  const active = u.backends.filter((b) => b.state === 'active');
  const { order, table } = buildTable(
    active.map((b) => ({ name: b.identity, weight: b.weight })),
    u.tableSize,
  );
  return Array.from(table, (i) => idOf[order[i]!.name]!);
}

describe('datapath reconciler, incremental', () => {
  beforeAll(() => {
    requirePrivileges('datapath-incremental');
    configureLogging({ level: 'error' });
  });
  afterAll(() => configureLogging({ level: 'info' }));

  it('plans only units that are not the objects it applied, and builds each table once', () => {
    using r = rig();
    const units = many(100);
    const first = ok(r.reconciler.reconcile(units));
    // 100 tables: built on worker threads too, installed in one batch.
    expect(first.planned).toBe(100);
    expect(first.tablesBuilt).toEqual({ 251: 100 });
    for (const s of r.reconciler.snapshot()) {
      const u = units.find((x) => x.key === s.key)!;
      expect(r.dp.maps.maglevTable(s.serviceId), u.key).toEqual(expectedTable(u, s.backendIds));
    }

    const same = countMapWrites(() => ok(r.reconciler.reconcile(units)));
    expect(same.writes).toEqual([]);
    expect(same.result).toMatchObject({ planned: 0, writes: 0, tablesBuilt: {} });

    // One unit changes: it alone is planned, its table alone swapped.
    const next = [...units];
    next[42] = withBackends(units[42]!, [{ address: '10.0.42.1' }, { address: '10.0.42.9' }]);
    const changed = ok(r.reconciler.reconcile(next));
    expect(changed).toMatchObject({ planned: 1, tablesBuilt: { 251: 1 } });
    expect(changed.ops).toMatchObject({ installMaglevTable: 1, setBackend: 1, clearBackend: 2 });
    expect(changed.changes.map((c) => c.unit)).toEqual([units[42]!.key]);

    // Units that went, and a list in another order with a duplicate: still
    // level-triggered (a full look), the same outcome as from scratch.
    const fewer = next.filter((_, i) => i % 10 !== 0);
    const removed = ok(r.reconciler.reconcile(fewer));
    expect(removed.planned).toBe(0);
    expect(removed.ops).toMatchObject({ deleteFrontend: 10, removeMaglevTable: 10 });
    const shuffled = [...fewer].reverse();
    const dup = r.reconciler.reconcile([...shuffled, shuffled[0]!]);
    expect(dup.writes).toBe(0);
    expect(dup.failures.map((f) => f.reason)).toEqual(['invalidUnit']);
    expect([...r.dp.maps.frontendEntries()]).toHaveLength(90);
  });

  it('does not skip a unit whose last pass failed, though it is the same object', () => {
    using r = rig();
    let fail = true;
    const flaky = new Proxy(r.dp.maps, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'setFrontend')
          return (...args: unknown[]) => {
            if (fail) throw Object.assign(new Error('no room'), { code: 'E2BIG', errno: 7 });
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const reconciler = r.restart(flaky);
    const units = many(3);
    const failed = reconciler.reconcile(units);
    expect(failed.retry).toBe(true);
    fail = false;
    const retried = ok(reconciler.reconcile(units));
    expect(retried.planned).toBe(3);
    expect(retried.ops).toMatchObject({ setFrontend: 3 });
    expect(ok(reconciler.reconcile(units)).planned).toBe(0);
  });

  it('installs table by table when a batch swap fails, so the failure lands on its unit', () => {
    using r = rig();
    let batches = 0;
    const flaky = new Proxy(r.dp.maps, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'installMaglevTables')
          return (...args: unknown[]) => {
            batches++;
            // Takes what the builder hands it (as the real one does), then fails.
            for (const _ of args[0] as Iterable<unknown>);
            throw Object.assign(new Error('out of memory'), { code: 'ENOMEM', errno: 12 });
          };
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
    const units = many(70);
    const result = ok(r.restart(flaky).reconcile(units));
    expect(batches).toBe(1);
    expect(result.ops.installMaglevTable).toBe(70);
    expect(r.dp.maps.maglevServiceIds()).toHaveLength(70);
  });

  it('adopts tables from the words after their last slot: no slot read, no table built, nothing written', () => {
    using r = rig();
    const units = many(80, 4);
    ok(r.reconciler.reconcile(units));
    const restarted = countMapWrites(() => {
      const again = r.restart();
      return again.reconcile(units);
    });
    expect(restarted.writes).toEqual([]);
    expect(ok(restarted.result)).toMatchObject({ writes: 0, tablesBuilt: {} });

    // A table installed without that record (an older agent, or by hand) is
    // read slot by slot and compared: adopted as is when it is the one wanted.
    const s = r.reconciler.snapshot()[0]!;
    const table = r.dp.maps.maglevTable(s.serviceId)!;
    r.dp.maps.installMaglevTable(s.serviceId, table);
    const adopted = countMapWrites(() => r.restart().reconcile(units));
    expect(adopted.writes).toEqual([]);
    expect(ok(adopted.result).tablesBuilt).toEqual({ 251: 1 });
    // ... and replaced when it is not.
    r.dp.maps.installMaglevTable(
      s.serviceId,
      table.map(() => table[0]!),
    );
    const repaired = ok(r.restart().reconcile(units));
    expect(repaired.ops).toEqual({ installMaglevTable: 1 });
    expect(r.dp.maps.maglevTable(s.serviceId)).toEqual(table);
  });

  it('bumps the flow cache generation once per pass, after its writes', () => {
    using r = rig();
    const gen = r.dp.maps.flowCacheGeneration();
    ok(r.reconciler.reconcile(many(20)));
    expect(r.dp.maps.flowCacheGeneration()).toBe(gen + 1);
    ok(r.reconciler.reconcile(many(20)));
    expect(r.dp.maps.flowCacheGeneration()).toBe(gen + 1);
    ok(r.reconciler.reconcile(many(10)));
    expect(r.dp.maps.flowCacheGeneration()).toBe(gen + 2);
  });
});
