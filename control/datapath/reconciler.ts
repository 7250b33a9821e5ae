// Desired units -> the datapath's maps, by difference against what the maps
// hold (read from them when the reconciler starts, then kept in step). Level-
// triggered and idempotent: the same units twice write nothing the second
// time; after a crash, a new reconciler over the same maps and id map writes
// only what changed meanwhile.
//
// Order, so no packet sees a state that sends it nowhere useful:
//   backends -> Maglev tables -> source ranges (added) -> VIPs -> frontends,
// and removal in reverse: frontends -> VIPs -> source ranges -> tables ->
// backends -> ids (to quarantine). A table is replaced whole (one swap), never
// emptied on the way; a terminating backend stays in xlb_backends, so its
// flows go on, but leaves the table.
import { isBpfError } from '../../native/index.js';
import type { Unit } from '../model/types.js';
import { logger, type Logger } from '../observe/log.js';
import { AppliedState, sameBackend, sameService, sameTable } from './applied.js';
import type { DatapathIds } from './ids.js';
import type { DatapathSettings } from './load.js';
import type { DatapathMaps } from './maps.js';
import { reconcilerMetrics, type ServiceCounterLabels } from './metrics.js';
import {
  frontendKey,
  planUnits,
  type PlanContext,
  type PlanFinding,
  type PlannedUnit,
} from './plan.js';

export type MapOp =
  | 'setBackend'
  | 'clearBackend'
  | 'installMaglevTable'
  | 'removeMaglevTable'
  | 'addSourceRange'
  | 'deleteSourceRange'
  | 'setVip'
  | 'deleteVip'
  | 'setFrontend'
  | 'deleteFrontend'
  | 'resetCounters'
  | 'scrubFlows';

/** Operations on the id map, counted apart from the datapath's maps. */
export type IdOp = 'allocateId' | 'releaseId' | 'expireIds';

export interface ReconcileFailure {
  /** The unit's key; for state left by a unit no longer desired, `service id N` / `backend id N`. */
  unit: string;
  op: MapOp | IdOp | PlanFinding['op'];
  /** errno code (E2BIG, ENOMEM...), `idsExhausted`, a plan reason, or the error's name. */
  reason: string;
  message: string;
  /** Tried again on the next pass (map errors, exhausted ids); the others need a new desired state. */
  retryable: boolean;
}

export interface UnitChange {
  unit: string;
  change: 'added' | 'changed' | 'removed';
  serviceId?: number;
  frontends: number;
  backends: { active: number; terminating: number };
  tableSwapped: boolean;
  writes: number;
}

export interface ReconcileResult {
  /** Everything desired is in the maps. */
  ok: boolean;
  /** Some failure may go away by itself: reconcile again later (ReconcileLoop does). */
  retry: boolean;
  /** Operations on the datapath's maps (each may be a few system calls). */
  writes: number;
  ops: Partial<Record<MapOp | IdOp, number>>;
  changes: UnitChange[];
  failures: ReconcileFailure[];
  durationSeconds: number;
}

export interface DatapathReconcilerOptions {
  maps: DatapathMaps;
  ids: DatapathIds;
  /** This node's addresses: the node of local backends that name none. */
  settings: Pick<DatapathSettings, 'nodeIPv4' | 'nodeIPv6'>;
  log?: Logger;
}

/** A unit as the reconciler last programmed it, for status and tests. */
export interface UnitSnapshot {
  key: string;
  serviceId: number;
  /** identity -> backend id */
  backendIds: Record<string, number>;
  frontends: string[];
}

interface UnitWork {
  writes: number;
  tableSwapped: boolean;
}

/** One pass's bookkeeping. */
class Pass {
  writes = 0;
  readonly ops: Partial<Record<MapOp | IdOp, number>> = {};
  readonly failures: ReconcileFailure[] = [];
  readonly work = new Map<string, UnitWork>();
  /** Units an earlier step failed for: their later steps wait for the next pass. */
  readonly blocked = new Set<string>();

  count(op: MapOp | IdOp, subject: string | undefined, isWrite: boolean): void {
    this.ops[op] = (this.ops[op] ?? 0) + 1;
    if (!isWrite) return;
    this.writes++;
    if (subject === undefined) return;
    const w = this.work.get(subject) ?? { writes: 0, tableSwapped: false };
    w.writes++;
    if (op === 'installMaglevTable') w.tableSwapped = true;
    this.work.set(subject, w);
  }
}

const idOps: ReadonlySet<string> = new Set<IdOp>(['allocateId', 'releaseId', 'expireIds']);

function failureReason(e: unknown): string {
  if (isBpfError(e)) return e.code;
  if (e instanceof Error && 'reason' in e && typeof e.reason === 'string') return e.reason;
  return e instanceof Error ? e.name : 'Error';
}

export class DatapathReconciler {
  readonly maps: DatapathMaps;
  readonly ids: DatapathIds;
  private readonly settings: Pick<DatapathSettings, 'nodeIPv4' | 'nodeIPv6'>;
  private readonly log: Logger;
  private readonly metrics = reconcilerMetrics();
  private applied: AppliedState;
  /** Fresh ids whose counters still hold a previous owner's numbers. */
  private readonly staleServiceCounters = new Set<number>();
  private readonly staleBackendCounters = new Set<number>();
  /** Who owned an id in earlier passes, to name what a removal is about. */
  private readonly serviceOwner = new Map<number, string>();
  private readonly backendOwner = new Map<number, string>();
  private planned: PlannedUnit[] = [];
  private readonly tableMemo: NonNullable<PlanContext['tables']> = new Map();
  private reportedFindings = new Set<string>();

  /** Reads what the maps hold: a new agent over a running datapath adopts it as it is. */
  constructor(options: DatapathReconcilerOptions) {
    this.maps = options.maps;
    this.ids = options.ids;
    this.settings = options.settings;
    this.log = options.log ?? logger('datapath');
    this.applied = this.readApplied();
  }

  private readApplied(): AppliedState {
    const applied = AppliedState.read(this.maps);
    // Ids in the maps that no record names (an agent that lost its id map,
    // or state written by hand) must not be handed out while in use.
    for (const id of applied.serviceIds()) {
      if (!this.ids.known('unit', id)) this.ids.adoptOrphan('unit', id);
    }
    for (const id of new Set([...applied.backends.keys(), ...applied.tableBackends()])) {
      if (!this.ids.known('backend', id)) this.ids.adoptOrphan('backend', id);
    }
    return applied;
  }

  /** Forgets what it believes the maps hold and reads them again (repairs drift). */
  resync(): void {
    this.applied = this.readApplied();
  }

  reconcile(units: readonly Unit[]): ReconcileResult {
    const started = performance.now();
    const pass = new Pass();
    const a = this.applied;
    const existed = a.serviceIds();

    try {
      // Flows may still name ids whose quarantine ends now: they go before
      // anyone new can get those ids.
      this.ids.beginPass((due) => {
        this.maps.deleteFlows({ serviceIds: due.unit, backendIds: due.backend });
        pass.count('scrubFlows', undefined, true);
      });
    } catch (e) {
      this.fail(pass, 'ids', 'expireIds', e);
    }
    const allocated: Array<{ kind: 'unit' | 'backend'; id: number }> = [];
    const plan = planUnits(units, {
      claim: (kind, owner, parent) => {
        try {
          const c = this.ids.claim(kind, owner, parent);
          if (c.fresh) allocated.push({ kind, id: c.id });
          return c;
        } catch (e) {
          const reason = failureReason(e);
          if (reason !== 'idsExhausted') this.metrics.mapErrors.inc({ op: 'allocateId', reason });
          throw e;
        }
      },
      nodeAddress: (family) => (family === 4 ? this.settings.nodeIPv4 : this.settings.nodeIPv6),
      appliedServiceId: (k) => a.frontends.get(k)?.service.id,
      tables: this.tableMemo,
    });
    const plannedKeys = new Set(plan.units.map((u) => u.key));
    for (const k of this.tableMemo.keys()) if (!plannedKeys.has(k)) this.tableMemo.delete(k);
    for (const x of allocated) {
      pass.count('allocateId', undefined, false);
      (x.kind === 'unit' ? this.staleServiceCounters : this.staleBackendCounters).add(x.id);
    }
    this.reportFindings(plan.findings, pass);

    const desiredBackends = new Map<number, string>();
    const desiredFrontends = new Set<string>();
    const desiredServices = new Map<number, PlannedUnit>();
    for (const u of plan.units) {
      desiredServices.set(u.serviceId, u);
      this.serviceOwner.set(u.serviceId, u.key);
      for (const f of u.frontends) desiredFrontends.add(frontendKey(f));
      for (const b of u.backends) {
        desiredBackends.set(b.id, u.key);
        this.backendOwner.set(b.id, u.key);
      }
    }
    const op = (o: MapOp, subject: string, fn: () => void): boolean => {
      try {
        fn();
        pass.count(o, subject, true);
        return true;
      } catch (e) {
        this.fail(pass, subject, o, e);
        pass.blocked.add(subject);
        return false;
      }
    };
    const live = (u: PlannedUnit): boolean => !pass.blocked.has(u.key);

    // 1. Backends, so every id a table is about to name is there.
    for (const u of plan.units) {
      for (const b of u.backends) {
        if (this.staleBackendCounters.has(b.id)) {
          if (!op('resetCounters', u.key, () => this.maps.resetBackendCounters(b.id))) continue;
          this.staleBackendCounters.delete(b.id);
        }
        if (sameBackend(a.backends.get(b.id), b.entry)) continue;
        if (op('setBackend', u.key, () => this.maps.setBackend(b.id, b.entry)))
          a.backends.set(b.id, b.entry);
      }
    }
    // 2. Tables: one swap when the content changed; none without an active
    //    backend. The swaps go in one batch: each update of xlb_maglev waits
    //    for an RCU grace period, a batch waits once.
    const swaps: Array<{ u: PlannedUnit; ids: number[] }> = [];
    for (const u of plan.units.filter(live)) {
      const t = u.table;
      if (t.kind === 'set' && !sameTable(a.tables.get(u.serviceId), t.backendIds)) {
        swaps.push({ u, ids: t.backendIds });
      } else if (t.kind === 'none' && a.tables.has(u.serviceId)) {
        if (op('removeMaglevTable', u.key, () => this.maps.removeMaglevTable(u.serviceId)))
          a.tables.delete(u.serviceId);
      }
    }
    let batched = false;
    if (swaps.length > 1) {
      try {
        this.maps.installMaglevTables(swaps.map((x) => [x.u.serviceId, x.ids] as const));
        batched = true;
      } catch {
        // One by one, so the failure lands on the unit it belongs to.
      }
    }
    for (const { u, ids } of swaps) {
      if (batched) pass.count('installMaglevTable', u.key, true);
      else if (
        !op('installMaglevTable', u.key, () => this.maps.installMaglevTable(u.serviceId, ids))
      )
        continue;
      a.tables.set(u.serviceId, ids);
    }
    // 3. Source ranges that admit more clients go in before the frontend
    //    enforces them; the ones that go come out after it changed.
    for (const u of plan.units.filter(live)) {
      const have = a.ranges.get(u.serviceId);
      for (const cidr of u.ranges) {
        if (have?.has(cidr)) continue;
        if (!op('addSourceRange', u.key, () => this.maps.addSourceRange(u.serviceId, cidr))) break;
        a.addRange(u.serviceId, cidr);
      }
    }
    // 4. VIPs before their first frontend (until its filter bit is set, the
    //    datapath passes the VIP's traffic without looking), then frontends.
    const vipCount = new Map<string, number>();
    for (const u of plan.units)
      for (const f of u.frontends) vipCount.set(f.vip, (vipCount.get(f.vip) ?? 0) + 1);
    for (const u of plan.units.filter(live)) {
      if (this.staleServiceCounters.has(u.serviceId)) {
        if (!op('resetCounters', u.key, () => this.maps.resetServiceCounters(u.serviceId)))
          continue;
        this.staleServiceCounters.delete(u.serviceId);
      }
      for (const f of u.frontends) {
        if (!a.vips.has(f.vip)) {
          const n = vipCount.get(f.vip) ?? 1;
          if (!op('setVip', u.key, () => this.maps.setVip(f.vip, n))) break;
          a.vips.set(f.vip, n);
        }
        const k = frontendKey(f);
        if (sameService(a.frontends.get(k)?.service, u.service)) continue;
        if (!op('setFrontend', u.key, () => this.maps.setFrontend(f, u.service))) break;
        a.frontends.set(k, { frontend: f, service: u.service });
      }
    }

    // Removal, in reverse.
    const ownerOfService = (id: number): string =>
      desiredServices.get(id)?.key ?? this.serviceOwner.get(id) ?? `service id ${id}`;
    const ownerOfBackend = (id: number): string => {
      const known = this.backendOwner.get(id);
      if (known !== undefined) return known;
      const parent = this.ids.parentOf('backend', id);
      return parent !== 0 ? ownerOfService(parent) : `backend id ${id}`;
    };
    const removal = (o: MapOp, subject: string, fn: () => void): boolean => {
      try {
        fn();
        pass.count(o, subject, true);
        return true;
      } catch (e) {
        this.fail(pass, subject, o, e);
        return false;
      }
    };
    // R1. Frontends nobody wants.
    for (const [k, f] of [...a.frontends]) {
      if (desiredFrontends.has(k)) continue;
      if (
        removal('deleteFrontend', ownerOfService(f.service.id), () =>
          this.maps.deleteFrontend(f.frontend),
        )
      )
        a.frontends.delete(k);
    }
    // R2. VIPs whose last frontend went; the informational counts of the rest.
    const onVip = new Map<string, number>();
    for (const f of a.frontends.values())
      onVip.set(f.frontend.vip, (onVip.get(f.frontend.vip) ?? 0) + 1);
    for (const [vip, stored] of [...a.vips]) {
      const n = onVip.get(vip) ?? 0;
      if (n === 0 && !vipCount.has(vip)) {
        if (removal('deleteVip', 'vips', () => this.maps.deleteVip(vip))) a.vips.delete(vip);
      } else if (n > 0 && n !== stored) {
        if (removal('setVip', 'vips', () => this.maps.setVip(vip, n))) a.vips.set(vip, n);
      }
    }
    // Frontends per service id, as they stand now that the unwanted ones went.
    const fronted = new Map<number, number>();
    for (const f of a.frontends.values())
      fronted.set(f.service.id, (fronted.get(f.service.id) ?? 0) + 1);
    // R3. Source ranges no longer listed (after the frontend stopped
    //     enforcing them, or enforces the smaller set).
    for (const [id, set] of [...a.ranges]) {
      const u = desiredServices.get(id);
      if (u !== undefined && !live(u)) continue;
      if (u === undefined && fronted.has(id)) continue;
      for (const cidr of [...set]) {
        if (u?.ranges.has(cidr)) continue;
        if (
          removal('deleteSourceRange', ownerOfService(id), () =>
            this.maps.deleteSourceRange(id, cidr),
          )
        )
          a.deleteRange(id, cidr);
      }
    }
    // R4. Tables of units that went (still led to by a frontend: not yet).
    for (const id of [...a.tables.keys()]) {
      if (desiredServices.has(id) || fronted.has(id)) continue;
      if (removal('removeMaglevTable', ownerOfService(id), () => this.maps.removeMaglevTable(id)))
        a.tables.delete(id);
    }
    // R5. Backends no unit wants and no table names. (Which ids the tables
    //     name is worked out only when some backend may go: it reads every slot.)
    let namedIds: Set<number> | undefined;
    const named = (id: number): boolean => (namedIds ??= a.tableBackends()).has(id);
    for (const id of [...a.backends.keys()]) {
      if (desiredBackends.has(id) || named(id)) continue;
      const subject = ownerOfBackend(id);
      if (removal('clearBackend', subject, () => this.maps.clearBackend(id))) a.backends.delete(id);
    }
    // Ids whose state is gone wait in quarantine: flows may still name them.
    const servicesInUse = a.serviceIds();
    for (const id of this.ids.unclaimed('unit')) {
      if (servicesInUse.has(id)) continue;
      if (this.release(pass, 'unit', id, ownerOfService(id))) {
        this.staleServiceCounters.delete(id);
        this.serviceOwner.delete(id);
      }
    }
    for (const id of this.ids.unclaimed('backend')) {
      if (a.backends.has(id) || named(id)) continue;
      if (this.release(pass, 'backend', id, ownerOfBackend(id))) {
        this.staleBackendCounters.delete(id);
        this.backendOwner.delete(id);
      }
    }

    this.planned = plan.units;
    const changes = this.changes(pass, plan.units, existed);
    for (const c of changes) {
      this.log.info({ ...c }, `unit ${c.change}`);
    }
    const durationSeconds = (performance.now() - started) / 1000;
    this.updateGauges(durationSeconds);
    return {
      ok: pass.failures.length === 0,
      retry: pass.failures.some((f) => f.retryable),
      writes: pass.writes,
      ops: pass.ops,
      changes,
      failures: pass.failures,
      durationSeconds,
    };
  }

  private release(pass: Pass, kind: 'unit' | 'backend', id: number, subject: string): boolean {
    try {
      this.ids.release(kind, id);
      pass.count('releaseId', subject, false);
      return true;
    } catch (e) {
      this.fail(pass, subject, 'releaseId', e);
      return false;
    }
  }

  private fail(pass: Pass, unit: string, op: MapOp | IdOp, e: unknown): void {
    const reason = failureReason(e);
    const message = e instanceof Error ? e.message : String(e);
    pass.failures.push({ unit, op, reason, message, retryable: true });
    this.metrics.mapErrors.inc({ op, reason });
    this.log.warn(
      { unit, op, reason, err: message },
      idOps.has(op)
        ? 'id map operation failed; retried on the next pass'
        : 'datapath map operation failed; the unit is retried on the next pass',
    );
  }

  /** Plan findings go into the result every pass, into the log only when new. */
  private reportFindings(findings: PlanFinding[], pass: Pass): void {
    const seen = new Set<string>();
    for (const f of findings) {
      pass.failures.push({ ...f });
      const sig = `${f.unit}\0${f.reason}\0${f.message}`;
      seen.add(sig);
      if (!this.reportedFindings.has(sig)) {
        this.log.warn({ unit: f.unit, op: f.op, reason: f.reason }, f.message);
      }
    }
    this.reportedFindings = seen;
  }

  private changes(
    pass: Pass,
    units: readonly PlannedUnit[],
    existed: ReadonlySet<number>,
  ): UnitChange[] {
    const out: UnitChange[] = [];
    const byKey = new Map(units.map((u) => [u.key, u]));
    for (const [subject, w] of pass.work) {
      const u = byKey.get(subject);
      if (subject === 'vips' && u === undefined) continue;
      // Half-done: its failure is logged now, its change once it is complete.
      if (pass.blocked.has(subject)) continue;
      const active = u?.backends.filter((b) => b.entry.state === 'active').length ?? 0;
      out.push({
        unit: subject,
        change: u === undefined ? 'removed' : existed.has(u.serviceId) ? 'changed' : 'added',
        ...(u !== undefined ? { serviceId: u.serviceId } : {}),
        frontends: u?.frontends.length ?? 0,
        backends: { active, terminating: (u?.backends.length ?? 0) - active },
        tableSwapped: w.tableSwapped,
        writes: w.writes,
      });
    }
    return out.sort((x, y) => (x.unit < y.unit ? -1 : x.unit > y.unit ? 1 : 0));
  }

  private updateGauges(durationSeconds: number): void {
    const m = this.metrics;
    m.duration.observe(durationSeconds);
    m.services.set(this.planned.length);
    m.frontends.set(this.applied.frontends.size);
    let active = 0;
    for (const b of this.applied.backends.values()) if (b.state === 'active') active++;
    m.backends.set({ state: 'active' }, active);
    m.backends.set({ state: 'terminating' }, this.applied.backends.size - active);
  }

  /** The units as last planned, with their ids. */
  snapshot(): UnitSnapshot[] {
    return this.planned.map((u) => ({
      key: u.key,
      serviceId: u.serviceId,
      backendIds: Object.fromEntries(u.backends.map((b) => [b.identity, b.id])),
      frontends: u.frontends.map((f) => `${f.vip}:${f.port}/${f.proto}`),
    }));
  }

  /** Labels of each programmed unit's counters (see registerDatapathMetrics). */
  serviceCounterLabels(): ServiceCounterLabels[] {
    return this.planned.map((u) => ({
      serviceId: u.serviceId,
      service: u.unit.service,
      port: String(u.unit.servicePort),
      protocol: u.unit.protocol,
      family: `IPv${u.unit.family}`,
    }));
  }
}
