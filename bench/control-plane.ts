// `npm run bench -- control-plane`: the agent's pipeline (ClusterStore ->
// incremental node model -> reconcile loop -> DatapathReconciler) over a
// real datapath, in a network namespace with a veth as the uplink, at
// 10,000 LoadBalancer Services of 10 endpoints each.
//
// 1. Initial sync: the store filled as informers would (one replaceAll),
//    then the pipeline started; timed until the first successful reconcile
//    returns, and checked against the maps (read through descriptors of
//    their own): every frontend, VIP, backend and table there.
// 2. Memory: the process's peak resident set (VmHWM) over the sync and the
//    changes, and its resident set after the sync.
// 3. Change-to-map latency: EndpointSlice changes (an endpoint turning not
//    ready, then ready again), one at a time, from store.apply() until the
//    reconcile pass that swapped the Service's table has returned; each
//    checked in the maps (table size, the backends it names, the backend
//    written or cleared).
// 4. A restarted agent, in a process of its own: adopts the pinned
//    datapath; it must write nothing.
//
// XLB_BENCH_SERVICES overrides the number of Services (for a quick try);
// the figures' names say which shape was measured.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { datapathPort } from '../control/agent/datapath.js';
import { unitKey } from '../control/model/index.js';
import { configureLogging } from '../control/observe/log.js';
import { ClusterStore } from '../control/store/cluster-store.js';
import { requireRoot } from '../control/system/privileges.js';
import { Topology } from '../control/topology/topology.js';
import {
  builtCount,
  memoryMB,
  NODE4,
  nextPass,
  openAgent,
  stopAgent,
  tablesBuilt,
  type RunningAgent,
} from './control-plane/agent.js';
import {
  endpointSlice,
  NAMESPACE,
  node,
  podOf,
  service,
  serviceName,
  vipOf,
  type ClusterShape,
} from './control-plane/cluster.js';
import type { RestartReport } from './control-plane/restart.js';
import { PinnedMaps } from './control-plane/verify.js';
import { TableWatcher } from './control-plane/watch.js';
import type { Figure } from './results.js';

const SHAPE: ClusterShape = {
  services: Number(process.env.XLB_BENCH_SERVICES ?? 10_000),
  endpointsPerService: 10,
  nodes: 20,
};
const CHANGES = 300;
/** Changes after those, timed until their new table is visible (see watch.ts). */
const WATCHED = 100;
const TABLE_SIZE = 16381;

const TARGETS = {
  syncSeconds: { op: '<=', value: 10 },
  rssMB: { op: '<=', value: 400 },
  p99Ms: { op: '<=', value: 20 },
  writesOnAdoption: { op: '<=', value: 0 },
} as const;

function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const keyOf = (i: number): string =>
  unitKey(`${NAMESPACE}/${serviceName(i)}`, { name: 'http', number: 80 }, 'TCP', 4);

export async function run(): Promise<Figure[]> {
  requireRoot('the control-plane benchmark (it loads and attaches the datapath)');
  configureLogging({ level: 'error' });
  const s = SHAPE;
  const shape = `${s.services} Services x ${s.endpointsPerService} endpoints`;
  const topo = new Topology('xlbcp');
  const pinDir = `/sys/fs/bpf/xlb-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  let ns: string | undefined;
  let agent: RunningAgent | undefined;
  let watcher: TableWatcher | undefined;
  try {
    ns = topo.addNamespace('node');
    const peer = topo.addNamespace('peer');
    topo.addVeth(
      { ns, ifname: 'eth0', addresses: [`${NODE4}/24`] },
      { ns: peer, ifname: 'eth0', addresses: ['192.0.2.254/24'] },
    );

    // ---- 1. initial sync ----
    const store = new ClusterStore();
    const tOpen = performance.now();
    agent = await openAgent(store, pinDir, ns);
    const openSeconds = (performance.now() - tOpen) / 1000;
    const tFill = performance.now();
    store.replaceAll({
      Service: Array.from({ length: s.services }, (_, i) => service(i)),
      EndpointSlice: Array.from({ length: s.services }, (_, i) => endpointSlice(i, s)),
      Node: Array.from({ length: s.nodes }, (_, k) => node(k)),
    });
    const tFilled = performance.now();
    // The informers' initial lists are in the store: the agent starts on them.
    const running = agent;
    const synced = await nextPass(running, () => running.pipeline.start(), 600_000);
    const tSynced = performance.now();
    const rssAfterSync = memoryMB('VmRSS');

    using pinned = new PinnedMaps(pinDir);
    const counts = pinned.counts();
    const want = s.services * s.endpointsPerService;
    if (
      counts.frontends !== s.services ||
      counts.vips !== s.services ||
      counts.tables !== s.services ||
      counts.backends.active !== want
    )
      throw new Error(`after the sync the maps hold ${JSON.stringify(counts)}`);
    const sync: Figure[] = [
      {
        name: `initial sync, ${shape}: store filled -> first successful reconcile returned`,
        value: (tSynced - tFilled) / 1000,
        unit: 's',
        target: TARGETS.syncSeconds,
      },
      {
        name: '  of which: node model derived (every Service)',
        value: running.deriveMs[0]!,
        unit: 'ms',
      },
      {
        name: '  of which: reconcile pass (ids, backends, tables, VIPs, frontends)',
        value: synced.durationSeconds * 1000,
        unit: 'ms',
      },
      {
        name: '    planning (ids, addresses, table digests)',
        value: synced.timings.plan * 1000,
        unit: 'ms',
      },
      {
        name: '    Maglev tables built on worker threads (time this thread waited for them)',
        value: synced.timings.build * 1000,
        unit: 'ms',
      },
      {
        name: '    installing tables (inner maps made, filled, swapped in batches)',
        value: synced.timings.install * 1000,
        unit: 'ms',
      },
      {
        name: `  Maglev tables built (${tablesBuilt(synced)})`,
        value: builtCount(synced),
        unit: 'tables',
      },
      {
        name: `store filled as informers would (replaceAll: ${s.services} Services, ${s.services} EndpointSlices, ${s.nodes} Nodes)`,
        value: (tFilled - tFill) / 1000,
        unit: 's',
      },
      { name: 'initial sync including the store fill', value: (tSynced - tFill) / 1000, unit: 's' },
      {
        name: 'datapath opened before the sync (load, pin, attach; not in the sync)',
        value: openSeconds,
        unit: 's',
      },
      { name: 'maps after the sync: frontends', value: counts.frontends, unit: 'entries' },
      { name: 'maps after the sync: VIPs', value: counts.vips, unit: 'entries' },
      {
        name: 'maps after the sync: active backends',
        value: counts.backends.active,
        unit: 'entries',
      },
      { name: 'maps after the sync: Maglev tables', value: counts.tables, unit: 'tables' },
    ];

    // ---- 3. change-to-map latency ----
    const latency: number[] = [];
    const visible: number[] = [];
    const derive: number[] = [];
    const reconcile: number[] = [];
    const install: number[] = [];
    let built = 0;
    const last = s.endpointsPerService - 1;
    const serviceOfVip = new Map(
      [...pinned.maps.frontendEntries()].map((f) => [f.frontend.vip, f.service.id]),
    );
    /** Change k: one EndpointSlice applied, its pass awaited and checked. */
    const change = async (k: number, watch?: TableWatcher): Promise<void> => {
      // Pairs: the Service's last endpoint turns not ready (it leaves the
      // table and xlb_backends), then ready again (its id comes back).
      const i = ((k >> 1) * 7919) % s.services;
      const readyUpTo = k % 2 === 0 ? last : s.endpointsPerService;
      const derived = running.deriveMs.length;
      const sid = serviceOfVip.get(vipOf(i))!;
      watch?.arm(sid);
      let t0 = 0n;
      const r = await nextPass(
        running,
        () => {
          t0 = process.hrtime.bigint();
          store.apply('EndpointSlice', endpointSlice(i, s, readyUpTo));
        },
        10_000,
      );
      const returned = process.hrtime.bigint();
      const what = `change ${k} (${keyOf(i)})`;
      if (watch !== undefined) {
        const seen = watch.take();
        if (seen === undefined) throw new Error(`${what}: its new table was not seen`);
        visible.push(Number(seen - t0) / 1e6);
        return;
      }
      latency.push(Number(returned - t0) / 1e6);
      if (running.deriveMs.length !== derived + 1) throw new Error('one change, one derivation');
      derive.push(running.deriveMs.at(-1)!);
      reconcile.push(r.durationSeconds * 1000);
      install.push(r.timings.install * 1000);
      built += builtCount(r);

      // The pass that returned is the one that swapped this Service's table.
      const c = r.changes.find((x) => x.unit === keyOf(i));
      if (c?.tableSwapped !== true || c.serviceId !== sid)
        throw new Error(`${what}: the pass did not swap its table: ${JSON.stringify(r.changes)}`);
      const table = pinned.table(sid);
      if (table?.size !== TABLE_SIZE || table.ids.size !== readyUpTo || !table.slotsOk)
        throw new Error(
          `${what}: its table has ${table?.size} slots naming ${table?.ids.size} backends (slots as recorded: ${table?.slotsOk}), ${readyUpTo} expected`,
        );
      for (const id of table.ids)
        if (pinned.backend(id) === undefined)
          throw new Error(`${what}: the table names backend ${id}, which is gone`);
      const backendOp = readyUpTo === last ? 'clearBackend' : 'setBackend';
      if (r.ops[backendOp] !== 1)
        throw new Error(
          `${what}: ${backendOp} for ${podOf(i, last)} expected: ${JSON.stringify(r.ops)}`,
        );
    };
    for (let k = 0; k < CHANGES; k++) await change(k);
    // Then, apart (its polling takes CPU from the passes it would measure),
    // when the datapath sees each new table.
    watcher = await TableWatcher.start(join(pinDir, 'xlb_maglev'));
    for (let k = CHANGES; k < CHANGES + WATCHED; k++) await change(k, watcher);
    const changes: Figure[] = [
      {
        name: `change-to-map latency p50 (${CHANGES} EndpointSlice changes: store.apply -> its pass returned)`,
        value: percentile(latency, 50),
        unit: 'ms',
      },
      {
        name: 'change-to-map latency p99',
        value: percentile(latency, 99),
        unit: 'ms',
        target: TARGETS.p99Ms,
      },
      { name: 'change-to-map latency max', value: Math.max(...latency), unit: 'ms' },
      {
        name: `  change -> new table visible in xlb_maglev (${WATCHED} more changes, polled from another thread) p50`,
        value: percentile(visible, 50),
        unit: 'ms',
      },
      { name: '  change -> new table visible p99', value: percentile(visible, 99), unit: 'ms' },
      { name: '  per change: node model derive p50', value: percentile(derive, 50), unit: 'ms' },
      { name: '  per change: node model derive p99', value: percentile(derive, 99), unit: 'ms' },
      { name: '  per change: reconcile pass p50', value: percentile(reconcile, 50), unit: 'ms' },
      { name: '  per change: reconcile pass p99', value: percentile(reconcile, 99), unit: 'ms' },
      {
        name: '    of it, the table install p50 (the half not in use written, then flipped)',
        value: percentile(install, 50),
        unit: 'ms',
      },
      { name: '    of it, the table install p99', value: percentile(install, 99), unit: 'ms' },
      {
        name: `  per change: Maglev tables built (M=${TABLE_SIZE})`,
        value: built / CHANGES,
        unit: 'tables',
      },
    ];

    const peakRss = memoryMB('VmHWM');

    // ---- 4. a restarted agent adopts the datapath ----
    await stopAgent(agent);
    agent = undefined;
    const restartScript = fileURLToPath(new URL('./control-plane/restart.js', import.meta.url));
    const restarted = JSON.parse(
      execFileSync(
        process.execPath,
        [
          restartScript,
          pinDir,
          ns,
          String(s.services),
          String(s.endpointsPerService),
          String(s.nodes),
        ],
        { encoding: 'utf8', timeout: 600_000 },
      ),
    ) as RestartReport;
    const restart: Figure[] = [
      {
        name: 'agent restart (a new process): adopt the pinned datapath, fill the store, first successful reconcile',
        value: restarted.seconds,
        unit: 's',
      },
      {
        name: 'agent restart: map writes by that reconcile',
        value: restarted.writes,
        unit: 'writes',
        target: TARGETS.writesOnAdoption,
      },
      {
        name: `  Maglev tables built by it (${restarted.tables || 'none'})`,
        value: restarted.tablesBuilt,
        unit: 'tables',
      },
      { name: '  its peak RSS (VmHWM)', value: restarted.peakRssMB, unit: 'MB' },
    ];

    const memory: Figure[] = [
      {
        name: 'peak RSS over the sync and the changes (VmHWM)',
        value: peakRss,
        unit: 'MB',
        target: TARGETS.rssMB,
      },
      { name: 'RSS after the initial sync (VmRSS)', value: rssAfterSync, unit: 'MB' },
    ];
    return [...sync, ...memory, ...changes, ...restart];
  } finally {
    watcher?.close();
    await stopAgent(agent).catch(() => undefined);
    if (ns !== undefined) {
      await datapathPort
        .uninstall({ pinDir, netns: ns, uplink: 'eth0' })
        .catch((e: unknown) => console.error(`bench control-plane: uninstall: ${String(e)}`));
    }
    topo.destroy();
  }
}
