// Desired units -> the datapath's maps, by difference against what the maps
// hold (read from them when the reconciler starts, then kept in step). Level-
// triggered and idempotent: the same units twice write nothing the second
// time; after a crash, a new reconciler over the same maps and id map writes
// only what changed meanwhile.
//
// Incremental: every pass is handed every unit, but a unit that is the same
// object as one applied completely before is not looked at again (the model
// hands out the same frozen object for a Service that did not change). The
// desired state is kept as indices (frontend owners, backend ids, VIP counts)
// that change only with the units that changed, and what a pass may have to
// remove is tracked as suspects: the entries of units that changed or went,
// kept until they are settled, so a removal that failed is tried again. The
// first pass after start or resync() treats everything as changed.
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
import { AppliedState, sameBackend, sameService } from './applied.js';
import type { Claim, DatapathIds, IdKind } from './ids.js';
import type { DatapathSettings } from './load.js';
import type { BackendEntry, DatapathMaps, Frontend } from './maps.js';
import { buildTables, type TableOutcome } from './maglev-workers.js';
import { reconcilerMetrics, type ServiceCounterLabels } from './metrics.js';
import {
  buildUnitTable,
  claimFailure,
  contentDigest,
  duplicateUnit,
  frontendConflict,
  frontendKey,
  frontendWinner,
  invalidTable,
  planUnit,
  tableFromIndices,
  tableJob,
  tableTrailer,
  unitFrontends,
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
  | 'scrubFlows'
  | 'invalidateFlowCache';

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
  /** Units planned in this pass (changed, new, or not yet applied completely). */
  planned: number;
  /** Maglev tables built in this pass, by table size. */
  tablesBuilt: Record<number, number>;
  /** Where the pass's time went, in seconds. */
  timings: PassTimings;
}

export interface PassTimings {
  /** Planning the units that changed (ids, addresses, table digests). */
  plan: number;
  /** Building Maglev tables. */
  build: number;
  /**
   * Installing tables: written into the half not in use and flipped to, or
   * (new service, new size) inner maps made, filled and swapped in, which
   * waits in the kernel for an RCU grace period once per batch.
   */
  install: number;
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
  readonly tablesBuilt: Record<number, number> = {};
  readonly timings: PassTimings = { plan: 0, build: 0, install: 0 };

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

/** What the reconciler knows of one desired unit. */
interface UnitState {
  key: string;
  /** The unit as last planned. */
  unit: Unit;
  /** Its frontends, canonical: what it claims (it keeps the ones it wins). */
  claims: Frontend[];
  claimFindings: PlanFinding[];
  /** Undefined while it has no id. */
  plan: PlannedUnit | undefined;
  findings: PlanFinding[];
  /** Everything its plan asks for is in the maps: nothing to do while the unit stays the same. */
  clean: boolean;
  /** The last pass that listed it (when the list was looked at unit by unit). */
  seen: number;
}

/** Runs one map operation for a unit: counted when done; a failure is recorded and blocks the unit's later steps. */
type OpRunner = (o: MapOp, subject: string, fn: () => void) => boolean;

const idOps: ReadonlySet<string> = new Set<IdOp>(['allocateId', 'releaseId', 'expireIds']);

/** Backends written per batch (a few hundred kilobytes of keys and values). */
const BACKENDS_PER_BATCH = 4096;

/** Tables built and installed per batch: one RCU wait each, one open inner map per table until then. */
const TABLES_PER_BATCH = 1024;

function failureReason(e: unknown): string {
  if (isBpfError(e)) return e.code;
  if (e instanceof Error && 'reason' in e && typeof e.reason === 'string') return e.reason;
  return e instanceof Error ? e.name : 'Error';
}

/** A set of ids 1..max: a byte each, where a Set of 100,000 numbers costs megabytes. */
class IdSet {
  private readonly flags: Uint8Array;

  constructor(max: number) {
    this.flags = new Uint8Array(max + 1);
  }

  has(id: number): boolean {
    return this.flags[id] === 1;
  }

  add(id: number): void {
    if (id < this.flags.length) this.flags[id] = 1;
  }

  delete(id: number): void {
    if (id < this.flags.length) this.flags[id] = 0;
  }
}

const byKey = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function increment<K>(m: Map<K, number>, k: K, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
}

export class DatapathReconciler {
  readonly maps: DatapathMaps;
  readonly ids: DatapathIds;
  private readonly settings: Pick<DatapathSettings, 'nodeIPv4' | 'nodeIPv6'>;
  private readonly log: Logger;
  private readonly metrics = reconcilerMetrics();
  private applied: AppliedState;
  /** Fresh ids whose counters still hold a previous owner's numbers. */
  private readonly staleServiceCounters: IdSet;
  private readonly staleBackendCounters: IdSet;
  /** Who owned an id in earlier passes, to name what a removal is about. */
  private readonly serviceOwner = new Map<number, string>();

  // The desired state, kept as units change.
  private readonly units = new Map<string, UnitState>();
  /** Units with an id, by it. */
  private readonly byServiceId = new Map<number, UnitState>();
  /** Frontend key -> the units (with an id) that claim it. */
  private readonly claimants = new Map<string, Array<{ key: string; serviceId: number }>>();
  /** Frontend key -> the unit that gets it. */
  private readonly winners = new Map<string, string>();
  /** VIP -> frontends on it that units won. */
  private readonly desiredVips = new Map<string, number>();
  /** Units with findings: reported every pass, as a whole pass would find them. */
  private readonly withFindings = new Map<string, PlanFinding[]>();
  private reportedDuplicates = new Set<string>();

  // What may have to go: entries of units that changed or went, until settled.
  private readonly suspectFrontends = new Set<string>();
  private readonly suspectVips = new Set<string>();
  private readonly suspectRanges = new Set<number>();
  private readonly suspectTables = new Set<number>();
  private readonly suspectBackends = new Set<number>();

  /** The last list of units, when it was sorted by unique key: the next list is diffed against it. */
  private lastInput: readonly Unit[] | undefined;
  /** Units planned but not completely applied: planned again every pass. */
  private readonly unclean = new Set<string>();
  /** Frontends whose claimants changed since their owner was last settled. */
  private contested = new Set<string>();
  private passNo = 0;
  /** Units the last pass planned. */
  private lastPlanned = 0;
  /** Per pass: whether each planned unit's service id named anything in the maps before it. */
  private existed = new Map<string, boolean>();
  /** The next pass looks at every unit and every entry (after start, resync or a bug). */
  private full = true;

  /** Reads what the maps hold: a new agent over a running datapath adopts it as it is. */
  constructor(options: DatapathReconcilerOptions) {
    this.maps = options.maps;
    this.ids = options.ids;
    this.settings = options.settings;
    this.log = options.log ?? logger('datapath');
    this.staleServiceCounters = new IdSet(this.ids.capacities.units);
    this.staleBackendCounters = new IdSet(this.ids.capacities.backends);
    this.applied = this.readApplied();
  }

  private readApplied(): AppliedState {
    const applied = AppliedState.read(this.maps);
    // Ids in the maps that no record names (an agent that lost its id map,
    // or state written by hand) must not be handed out while in use.
    for (const id of applied.serviceIds()) {
      if (!this.ids.known('unit', id)) this.ids.adoptOrphan('unit', id);
    }
    for (const id of applied.backendIds())
      if (!this.ids.known('backend', id)) this.ids.adoptOrphan('backend', id);
    for (const t of applied.tables.values())
      for (const id of t.ids)
        if (!this.ids.known('backend', id)) this.ids.adoptOrphan('backend', id);
    return applied;
  }

  /** Forgets what it believes the maps hold and reads them again (repairs drift). */
  resync(): void {
    this.applied = this.readApplied();
    this.full = true;
  }

  reconcile(units: readonly Unit[]): ReconcileResult {
    const started = performance.now();
    const pass = new Pass();
    this.passNo++;
    this.maps.holdFlowCacheInvalidation();
    try {
      this.run(units, pass);
    } catch (e) {
      // A bug: what is kept between passes may be half updated. Start over
      // from the maps on the next pass rather than trust it.
      this.forgetEverything();
      throw e;
    } finally {
      try {
        this.maps.flushFlowCacheInvalidation();
      } catch (e) {
        this.fail(pass, 'flow cache', 'invalidateFlowCache', e);
      }
    }
    const changes = this.changes(pass);
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
      planned: this.lastPlanned,
      tablesBuilt: pass.tablesBuilt,
      timings: pass.timings,
    };
  }

  private run(units: readonly Unit[], pass: Pass): void {
    if (this.full) this.startOver();
    try {
      // Flows may still name ids whose quarantine ends now: they go before
      // anyone new can get those ids.
      this.ids.expireDue((due) => {
        this.maps.deleteFlows({ serviceIds: due.unit, backendIds: due.backend });
        pass.count('scrubFlows', undefined, true);
      });
    } catch (e) {
      this.fail(pass, 'ids', 'expireIds', e);
    }

    const full = this.full;
    this.full = false;
    const { dirty, duplicates } = this.changedUnits(units, full);
    const planStarted = performance.now();
    const planned = this.plan(dirty, pass);
    pass.timings.plan = (performance.now() - planStarted) / 1000;
    this.lastPlanned = planned.length;
    this.reportFindings(duplicates, pass);
    this.existed = new Map(planned.map((s) => [s.key, this.applied.hasService(s.plan!.serviceId)]));

    const op: OpRunner = (o, subject, fn) => {
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
    const plans = planned.map((s) => s.plan!);
    this.applyBackends(plans, pass, op);
    const live = plans.filter((u) => !pass.blocked.has(u.key));
    this.applyTables(live, pass, op);
    this.applyRanges(
      live.filter((u) => !pass.blocked.has(u.key)),
      op,
    );
    this.applyFrontends(
      live.filter((u) => !pass.blocked.has(u.key)),
      pass,
      op,
    );
    this.removeUnwanted(pass);
    this.releaseIds(pass);

    for (const s of planned) {
      s.clean = !pass.blocked.has(s.key) && !s.findings.some((f) => f.retryable);
      if (s.clean) this.unclean.delete(s.key);
      else this.unclean.add(s.key);
    }
  }

  /** The units to plan (new, changed, not yet applied) in key order, and keys listed twice. */
  private changedUnits(
    units: readonly Unit[],
    full: boolean,
  ): { dirty: Map<string, Unit>; duplicates: string[] } {
    const previous = this.lastInput;
    this.lastInput = undefined;
    const quick = full || previous === undefined ? undefined : this.diffSorted(previous, units);
    if (quick !== undefined) {
      this.lastInput = units.slice();
      for (const key of this.unclean) {
        const s = this.units.get(key);
        if (s !== undefined && !quick.has(key)) quick.set(key, s.unit);
      }
      return { dirty: quick, duplicates: [] };
    }
    const dirty = new Map<string, Unit>();
    const duplicates: string[] = [];
    let listed = 0;
    let sorted = true;
    let last = '';
    for (const u of units) {
      if (u.key <= last) sorted = false;
      last = u.key;
      const s = this.units.get(u.key);
      if (s === undefined) {
        if (dirty.has(u.key)) duplicates.push(u.key);
        else dirty.set(u.key, u);
        continue;
      }
      if (s.seen === this.passNo) {
        duplicates.push(u.key);
        continue;
      }
      s.seen = this.passNo;
      listed++;
      if (full || s.unit !== u || !s.clean) dirty.set(u.key, u);
    }
    if (listed < this.units.size) {
      for (const s of [...this.units.values()]) if (s.seen !== this.passNo) this.removeUnit(s);
    }
    // Sorted and unique (as the model hands units out): next time, a diff.
    if (sorted) this.lastInput = units.slice();
    return { dirty, duplicates };
  }

  /**
   * The units that differ between two lists sorted by unique key, with the
   * ones that went removed; undefined when `next` is not sorted and unique
   * (then every unit is looked at). A unit that is the same object at the
   * same place costs a comparison of references; keys are compared only
   * where the lists differ, which is also where order could break.
   */
  private diffSorted(prev: readonly Unit[], next: readonly Unit[]): Map<string, Unit> | undefined {
    const changed = new Map<string, Unit>();
    const gone: string[] = [];
    let i = 0;
    let aligned = true;
    for (let j = 0; j < next.length; j++) {
      const u = next[j]!;
      if (i < prev.length && prev[i] === u && aligned) {
        i++;
        continue;
      }
      // Where the lists part or meet again, order must hold: inside a run of
      // the same units it holds as it held in `prev`.
      if (j > 0 && u.key <= next[j - 1]!.key) return undefined;
      // Units before this key that are no longer listed went.
      while (i < prev.length && prev[i]!.key < u.key) gone.push(prev[i++]!.key);
      const same = i < prev.length && prev[i] === u;
      if (i < prev.length && prev[i]!.key === u.key) i++;
      aligned = same;
      if (!same) changed.set(u.key, u);
    }
    while (i < prev.length) gone.push(prev[i++]!.key);
    for (const key of gone) {
      const s = this.units.get(key);
      if (s !== undefined && !changed.has(key)) this.removeUnit(s);
    }
    return changed;
  }

  /** A unit no longer desired: its entries become suspects, its ids unclaimed. */
  private removeUnit(s: UnitState): void {
    this.dropPlan(s);
    for (const k of this.unclaimFrontends(s)) this.contested.add(k);
    this.withFindings.delete(s.key);
    this.unclean.delete(s.key);
    this.units.delete(s.key);
  }

  /** Takes a plan's wishes out of the desired state; its entries become suspects. */
  private retirePlan(s: UnitState): void {
    const p = s.plan;
    if (p === undefined) return;
    for (const f of p.frontends) {
      const k = frontendKey(f);
      this.suspectFrontends.add(k);
      this.suspectVips.add(f.vip);
      increment(this.desiredVips, f.vip, -1);
    }
    for (const id of p.backendIds) {
      this.suspectBackends.add(id);
      this.ids.unclaim('backend', id);
    }
    this.suspectRanges.add(p.serviceId);
    this.suspectTables.add(p.serviceId);
  }

  private unclaimFrontends(s: UnitState): Set<string> {
    const keys = new Set<string>();
    for (const f of s.claims) {
      const k = frontendKey(f);
      keys.add(k);
      const c = this.claimants.get(k)?.filter((x) => x.key !== s.key);
      if (c === undefined || c.length === 0) this.claimants.delete(k);
      else this.claimants.set(k, c);
    }
    s.claims = [];
    return keys;
  }

  /**
   * Plans the dirty units: ids, then the frontends they claim (which may
   * hand a contested frontend to another unit, which is then planned too),
   * then everything else. Returns the planned units in key order.
   */
  private plan(dirty: Map<string, Unit>, pass: Pass): UnitState[] {
    const ctx: PlanContext = {
      claim: (kind, owner, parent) => this.claim(kind, owner, parent, pass),
      nodeAddress: (family) => (family === 4 ? this.settings.nodeIPv4 : this.settings.nodeIPv6),
    };
    const contested = this.contested;
    this.contested = new Set();
    const claims = new Map<UnitState, Claim>();
    for (const key of [...dirty.keys()].sort(byKey)) {
      const unit = dirty.get(key)!;
      let s = this.units.get(key);
      if (s === undefined) {
        s = {
          key,
          unit,
          claims: [],
          claimFindings: [],
          plan: undefined,
          findings: [],
          clean: false,
          seen: this.passNo,
        };
        this.units.set(key, s);
      }
      s.unit = unit;
      for (const k of this.unclaimFrontends(s)) contested.add(k);
      let claim: Claim;
      try {
        claim = ctx.claim('unit', key);
      } catch (e) {
        // No id: as if the unit were not desired, until one is free.
        this.dropPlan(s);
        this.setFindings(s, [claimFailure(key, e)]);
        s.clean = false;
        this.unclean.add(key);
        continue;
      }
      const { frontends, findings } = unitFrontends(unit);
      s.claims = frontends;
      s.claimFindings = findings;
      for (const f of frontends) {
        const k = frontendKey(f);
        contested.add(k);
        const c = this.claimants.get(k);
        if (c === undefined) this.claimants.set(k, [{ key, serviceId: claim.id }]);
        else c.push({ key, serviceId: claim.id });
      }
      if (s.plan !== undefined && s.plan.serviceId !== claim.id)
        this.byServiceId.delete(s.plan.serviceId);
      this.byServiceId.set(claim.id, s);
      claims.set(s, claim);
    }
    // Owners of the frontends whose claimants changed. Every claimant of a
    // frontend with more than one, or whose owner changed, is planned again:
    // its frontends or its findings move.
    for (const k of contested) {
      const c = this.claimants.get(k);
      const before = this.winners.get(k);
      if (c === undefined) {
        this.winners.delete(k);
        continue;
      }
      const holder = this.applied.frontends.get(k)?.service.id;
      const w = frontendWinner(c, holder)!;
      this.winners.set(k, w);
      if (c.length < 2 && w === before) continue;
      for (const { key } of c) {
        const s = this.units.get(key)!;
        if (!claims.has(s)) claims.set(s, { id: s.plan!.serviceId, fresh: false });
      }
    }

    const states = [...claims.keys()].sort((a, b) => byKey(a.key, b.key));
    for (const s of states) {
      this.retirePlan(s);
      const won: Frontend[] = [];
      const conflicts: PlanFinding[] = [];
      for (const f of s.claims) {
        const k = frontendKey(f);
        const w = this.winners.get(k)!;
        if (w === s.key) won.push(f);
        else conflicts.push(frontendConflict(s.key, k, w));
      }
      const { planned, findings } = planUnit(s.unit, claims.get(s)!, won, ctx);
      s.plan = planned;
      this.serviceOwner.set(planned.serviceId, s.key);
      for (const f of won) increment(this.desiredVips, f.vip, 1);
      this.setFindings(s, [...s.claimFindings, ...conflicts, ...findings]);
    }
    return states;
  }

  /** A unit loses its plan (it went, or has no id): its wishes go, its entries become suspects. */
  private dropPlan(s: UnitState): void {
    if (s.plan === undefined) return;
    this.retirePlan(s);
    this.byServiceId.delete(s.plan.serviceId);
    this.ids.unclaim('unit', s.plan.serviceId);
    s.plan = undefined;
  }

  private claim(kind: IdKind, owner: string, parent: number | undefined, pass: Pass): Claim {
    try {
      const c = this.ids.claim(kind, owner, parent);
      if (c.fresh) {
        pass.count('allocateId', undefined, false);
        (kind === 'unit' ? this.staleServiceCounters : this.staleBackendCounters).add(c.id);
      }
      return c;
    } catch (e) {
      const reason = failureReason(e);
      if (reason !== 'idsExhausted') this.metrics.mapErrors.inc({ op: 'allocateId', reason });
      throw e;
    }
  }

  private setFindings(s: UnitState, findings: PlanFinding[]): void {
    // Logged when new for this unit; reported in every pass's result.
    const before = new Set(s.findings.map((f) => `${f.reason}\0${f.message}`));
    for (const f of findings) {
      if (!before.has(`${f.reason}\0${f.message}`))
        this.log.warn({ unit: f.unit, op: f.op, reason: f.reason }, f.message);
    }
    s.findings = findings;
    if (findings.length > 0) this.withFindings.set(s.key, findings);
    else this.withFindings.delete(s.key);
  }

  /** Plan findings go into every pass's result, as a pass over every unit would find them. */
  private reportFindings(duplicates: string[], pass: Pass): void {
    const seen = new Set<string>();
    for (const key of duplicates) {
      const f = duplicateUnit(key);
      pass.failures.push(f);
      seen.add(key);
      if (!this.reportedDuplicates.has(key))
        this.log.warn({ unit: f.unit, op: f.op, reason: f.reason }, f.message);
    }
    this.reportedDuplicates = seen;
    for (const key of [...this.withFindings.keys()].sort(byKey)) {
      for (const f of this.withFindings.get(key)!) pass.failures.push({ ...f });
    }
  }

  // ---- forward: backends -> tables -> ranges -> VIPs and frontends ----

  /**
   * 1. Backends, so every id a table is about to name is there. In chunks:
   *    a full sync writes 100,000, and a list of them all would outlive
   *    the young generation (and be garbage right after).
   */
  private applyBackends(plans: PlannedUnit[], pass: Pass, op: OpRunner): void {
    const a = this.applied;
    type Write = {
      id: number;
      backend: BackendEntry;
      previous: BackendEntry | undefined;
      subject: string;
    };
    let resets: Array<{ id: number; subject: string }> = [];
    let writes: Write[] = [];
    const flush = (): void => {
      const failedReset = new Set<number>();
      this.batched(pass, op, 'resetCounters', resets, {
        all: (xs) => this.maps.resetBackendCountersMany(xs.map((x) => x.id)),
        one: (x) => this.maps.resetBackendCounters(x.id),
        done: (x) => this.staleBackendCounters.delete(x.id),
        failed: (x) => failedReset.add(x.id),
      });
      this.batched(
        pass,
        op,
        'setBackend',
        failedReset.size === 0 ? writes : writes.filter((w) => !failedReset.has(w.id)),
        {
          all: (xs) => this.maps.setBackends(xs),
          one: (x) => this.maps.setBackend(x.id, x.backend),
          done: (x) => a.setBackend(x.id, x.backend),
        },
      );
      resets = [];
      writes = [];
    };
    for (const u of plans) {
      u.backends.forEach((b, i) => {
        const id = u.backendIds[i]!;
        if (this.staleBackendCounters.has(id)) resets.push({ id, subject: u.key });
        const have = a.backend(id);
        if (!sameBackend(have, b)) writes.push({ id, backend: b, previous: have, subject: u.key });
        // Equal: the plan's object stands for it from now on (the one read
        // from the map on adoption would be a second copy of the same).
        else if (have !== b) a.setBackend(id, b);
      });
      if (writes.length >= BACKENDS_PER_BATCH || resets.length >= BACKENDS_PER_BATCH) flush();
    }
    flush();
  }

  /**
   * One operation on many items: all at once (a system call per few
   * thousand); if that fails, one by one, so each failure lands on the unit
   * it belongs to. Each item counts as one operation either way.
   */
  private batched<T extends { subject: string }>(
    pass: Pass,
    op: OpRunner,
    o: MapOp,
    items: readonly T[],
    f: {
      all: (items: readonly T[]) => void;
      one: (item: T) => void;
      done: (item: T) => void;
      failed?: (item: T) => void;
    },
  ): void {
    if (items.length === 0) return;
    if (items.length > 1) {
      try {
        f.all(items);
        for (const x of items) {
          pass.count(o, x.subject, true);
          f.done(x);
        }
        return;
      } catch {
        // One by one below.
      }
    }
    for (const x of items) {
      if (op(o, x.subject, () => f.one(x))) f.done(x);
      else f.failed?.(x);
    }
  }

  /**
   * 2. Tables: one swap when the content changed; none without an active
   *    backend. A table whose inner map has its size is flipped in place;
   *    new inner maps go in batches: each update of xlb_maglev waits for an
   *    RCU grace period, a batch waits once. A table is built only here
   *    (on worker threads too when there are many), copied into its inner
   *    map as soon as it is built, and dropped.
   */
  private applyTables(live: PlannedUnit[], pass: Pass, op: OpRunner): void {
    const a = this.applied;
    const swaps: PlannedUnit[] = [];
    for (const u of live) {
      const t = u.table;
      const have = a.tables.get(u.serviceId);
      if (t.kind === 'set') {
        if (have?.digest === t.digest) continue;
        if (have?.digest.startsWith('ct:')) {
          // Installed by someone who left no record of its inputs: compare
          // slots, so adopting it writes nothing when it is what we would build.
          const built = this.build(u, pass);
          if (built !== undefined && contentDigest(built.slots) === have.digest) {
            a.setTable(u.serviceId, { digest: t.digest, ids: built.ids });
            continue;
          }
        }
        swaps.push(u);
      } else if (t.kind === 'none' && have !== undefined) {
        if (op('removeMaglevTable', u.key, () => this.maps.removeMaglevTable(u.serviceId)))
          a.deleteTable(u.serviceId);
      }
    }
    if (swaps.length === 0) return;
    const started = performance.now();
    const building = pass.timings.build;
    const built = buildTables(swaps.map(tableJob))[Symbol.iterator]();
    // Time on this thread inside the builder: building, or waiting for a worker.
    const timed: Iterator<[number, TableOutcome]> = {
      next: () => {
        const t0 = performance.now();
        const r = built.next();
        pass.timings.build += (performance.now() - t0) / 1000;
        return r;
      },
    };
    try {
      for (let left = swaps.length; left > 0; left -= TABLES_PER_BATCH) {
        this.installBatch(timed, Math.min(left, TABLES_PER_BATCH), swaps, pass, op);
      }
    } finally {
      built.return?.(undefined);
    }
    pass.timings.install += (performance.now() - started) / 1000 - (pass.timings.build - building);
  }

  /**
   * Installs the next `n` tables `source` builds, in one swap; if that
   * fails, one by one, so the failure lands on the unit it belongs to.
   */
  private installBatch(
    source: Iterator<[number, TableOutcome]>,
    n: number,
    swaps: PlannedUnit[],
    pass: Pass,
    op: OpRunner,
  ): void {
    const a = this.applied;
    const digestOf = (u: PlannedUnit): string => (u.table.kind === 'set' ? u.table.digest : '');
    /**
     * The units taken from `source`, with the ids their tables name
     * (undefined: not built) and, for a batch of one, the table itself.
     */
    const taken: Array<{
      u: PlannedUnit;
      ids: readonly number[] | undefined;
      slots?: Uint32Array;
    }> = [];
    const take = (): { u: PlannedUnit; slots: Uint32Array; ids: number[] } | undefined => {
      while (taken.length < n) {
        const r = source.next();
        if (r.done === true) return undefined;
        const [i, outcome] = r.value;
        const u = swaps[i]!;
        const built = this.fromOutcome(u, outcome, pass);
        taken.push({ u, ids: built?.ids, ...(n === 1 && built ? { slots: built.slots } : {}) });
        if (built !== undefined) return { u, ...built };
      }
      return undefined;
    };
    const installed = (u: PlannedUnit, ids: readonly number[]): void =>
      a.setTable(u.serviceId, { digest: digestOf(u), ids });
    if (n > 1) {
      // Each table goes into its inner map as it comes: only the inner maps
      // (kernel memory) hold the batch until its one swap.
      const tables = function* (): Generator<readonly [number, Uint32Array, Uint32Array]> {
        for (let t = take(); t !== undefined; t = take())
          yield [t.u.serviceId, t.slots, tableTrailer(digestOf(t.u), t.ids)];
      };
      try {
        this.maps.installMaglevTables(tables());
        for (const { u, ids } of taken) {
          if (ids === undefined) continue;
          pass.count('installMaglevTable', u.key, true);
          installed(u, ids);
        }
        return;
      } catch {
        // One by one below, with the rest of the batch.
        while (take() !== undefined);
      }
    } else take();
    for (const { u, ids, slots } of taken) {
      if (ids === undefined) continue;
      // A failed batch is built again: a batch keeps no table in memory.
      const t = slots !== undefined ? { slots, ids } : this.build(u, pass);
      if (t === undefined) continue;
      const trailer = tableTrailer(digestOf(u), t.ids);
      if (
        op('installMaglevTable', u.key, () =>
          this.maps.installMaglevTable(u.serviceId, t.slots, trailer),
        )
      )
        installed(u, t.ids);
    }
  }

  /** A table the builder made, as ids; one that could not be built is a finding, and the installed one stays. */
  private fromOutcome(
    u: PlannedUnit,
    outcome: TableOutcome,
    pass: Pass,
  ): { slots: Uint32Array; ids: number[] } | undefined {
    if ('error' in outcome) {
      this.tableFailure(u, new Error(outcome.error), pass);
      return undefined;
    }
    pass.tablesBuilt[u.unit.tableSize] = (pass.tablesBuilt[u.unit.tableSize] ?? 0) + 1;
    return tableFromIndices(u, outcome.table);
  }

  /** Builds a unit's table here. */
  private build(u: PlannedUnit, pass: Pass): ReturnType<typeof buildUnitTable> | undefined {
    const started = performance.now();
    try {
      const built = buildUnitTable(u);
      pass.tablesBuilt[u.unit.tableSize] = (pass.tablesBuilt[u.unit.tableSize] ?? 0) + 1;
      pass.timings.build += (performance.now() - started) / 1000;
      return built;
    } catch (e) {
      this.tableFailure(u, e, pass);
      return undefined;
    }
  }

  private tableFailure(u: PlannedUnit, e: unknown, pass: Pass): void {
    const f = invalidTable(u.key, e);
    pass.failures.push(f);
    this.log.warn({ unit: f.unit, op: f.op, reason: f.reason }, f.message);
  }

  /**
   * 3. Source ranges that admit more clients go in before the frontend
   *    enforces them; the ones that go come out after it changed.
   */
  private applyRanges(live: PlannedUnit[], op: OpRunner): void {
    const a = this.applied;
    for (const u of live) {
      const have = a.ranges.get(u.serviceId);
      for (const cidr of u.ranges) {
        if (have?.has(cidr)) continue;
        if (!op('addSourceRange', u.key, () => this.maps.addSourceRange(u.serviceId, cidr))) break;
        a.addRange(u.serviceId, cidr);
      }
    }
  }

  /**
   * 4. VIPs before their first frontend (until its filter bit is set, the
   *    datapath passes the VIP's traffic without looking), then frontends.
   */
  private applyFrontends(live: PlannedUnit[], pass: Pass, op: OpRunner): void {
    const a = this.applied;
    const resets = live
      .filter((u) => this.staleServiceCounters.has(u.serviceId))
      .map((u) => ({ id: u.serviceId, subject: u.key }));
    this.batched(pass, op, 'resetCounters', resets, {
      all: (xs) => this.maps.resetServiceCountersMany(xs.map((x) => x.id)),
      one: (x) => this.maps.resetServiceCounters(x.id),
      done: (x) => this.staleServiceCounters.delete(x.id),
    });
    for (const u of live) {
      if (this.staleServiceCounters.has(u.serviceId)) continue;
      for (const f of u.frontends) {
        if (!a.vips.has(f.vip)) {
          const n = this.desiredVips.get(f.vip) ?? 1;
          if (!op('setVip', u.key, () => this.maps.setVip(f.vip, n))) break;
          a.setVip(f.vip, n);
        }
        const k = frontendKey(f);
        if (sameService(a.frontends.get(k)?.service, u.service)) continue;
        if (!op('setFrontend', u.key, () => this.maps.setFrontend(f, u.service))) break;
        a.setFrontend(k, { frontend: f, service: u.service });
        // Its count may now differ from the one stored with it.
        this.suspectVips.add(f.vip);
      }
    }
  }

  // ---- removal, in reverse ----

  private ownerOfService(id: number): string {
    return this.byServiceId.get(id)?.key ?? this.serviceOwner.get(id) ?? `service id ${id}`;
  }

  private ownerOfBackend(id: number): string {
    const parent = this.ids.parentOf('backend', id);
    return parent !== 0 ? this.ownerOfService(parent) : `backend id ${id}`;
  }

  private removeUnwanted(pass: Pass): void {
    const a = this.applied;
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
    const blocked = (id: number): boolean => {
      const s = this.byServiceId.get(id);
      return s !== undefined && pass.blocked.has(s.key);
    };
    // R1. Frontends nobody wants.
    for (const k of [...this.suspectFrontends]) {
      const f = a.frontends.get(k);
      if (this.winners.has(k) || f === undefined) {
        this.suspectFrontends.delete(k);
        continue;
      }
      if (
        removal('deleteFrontend', this.ownerOfService(f.service.id), () =>
          this.maps.deleteFrontend(f.frontend),
        )
      ) {
        a.deleteFrontend(k);
        this.suspectFrontends.delete(k);
        this.suspectVips.add(f.frontend.vip);
      }
    }
    // R2. VIPs whose last frontend went; the informational counts of the rest.
    for (const vip of [...this.suspectVips]) {
      const stored = a.vips.get(vip);
      const n = a.frontendsOn(vip);
      let done = true;
      if (stored === undefined) {
        // Not in the map: nothing to remove or correct.
      } else if (n === 0 && !this.desiredVips.has(vip)) {
        const shared = a.sharesFilterBit(vip);
        done = removal('deleteVip', 'vips', () => this.maps.deleteVip(vip, shared));
        if (done) a.deleteVip(vip);
      } else if (n > 0 && n !== stored) {
        done = removal('setVip', 'vips', () => this.maps.setVip(vip, n));
        if (done) a.setVip(vip, n);
      }
      if (done) this.suspectVips.delete(vip);
    }
    // R3. Source ranges no longer listed (after the frontend stopped
    //     enforcing them, or enforces the smaller set).
    for (const id of [...this.suspectRanges]) {
      const set = a.ranges.get(id);
      const u = this.byServiceId.get(id)?.plan;
      if (set === undefined) {
        this.suspectRanges.delete(id);
        continue;
      }
      if ((u !== undefined && blocked(id)) || (u === undefined && a.frontendsOf(id) > 0)) continue;
      let done = true;
      for (const cidr of [...set]) {
        if (u?.ranges.has(cidr)) continue;
        if (
          removal('deleteSourceRange', this.ownerOfService(id), () =>
            this.maps.deleteSourceRange(id, cidr),
          )
        )
          a.deleteRange(id, cidr);
        else done = false;
      }
      if (done) this.suspectRanges.delete(id);
    }
    // R4. Tables of units that went (still led to by a frontend: not yet).
    for (const id of [...this.suspectTables]) {
      const t = a.tables.get(id);
      if (t === undefined || this.byServiceId.has(id)) {
        this.suspectTables.delete(id);
        continue;
      }
      if (a.frontendsOf(id) > 0) continue;
      if (
        removal('removeMaglevTable', this.ownerOfService(id), () => this.maps.removeMaglevTable(id))
      ) {
        a.deleteTable(id);
        this.suspectTables.delete(id);
        for (const b of t.ids) this.suspectBackends.add(b);
      }
    }
    // R5. Backends no unit wants and no table names.
    for (const id of [...this.suspectBackends]) {
      // A backend some unit wants is claimed by it.
      if (this.ids.isClaimed('backend', id) || !a.hasBackend(id)) {
        this.suspectBackends.delete(id);
        continue;
      }
      if (a.named(id)) continue;
      if (removal('clearBackend', this.ownerOfBackend(id), () => this.maps.clearBackend(id))) {
        a.deleteBackend(id);
        this.suspectBackends.delete(id);
      }
    }
  }

  /** Ids whose state is gone wait in quarantine: flows may still name them. */
  private releaseIds(pass: Pass): void {
    const a = this.applied;
    for (const id of this.ids.unclaimed('unit')) {
      if (a.hasService(id)) continue;
      if (this.release(pass, 'unit', id, this.ownerOfService(id))) {
        this.staleServiceCounters.delete(id);
        this.serviceOwner.delete(id);
      }
    }
    for (const id of this.ids.unclaimed('backend')) {
      if (a.hasBackend(id) || a.named(id)) continue;
      if (this.release(pass, 'backend', id, this.ownerOfBackend(id))) {
        this.staleBackendCounters.delete(id);
      }
    }
  }

  private release(pass: Pass, kind: IdKind, id: number, subject: string): boolean {
    try {
      this.ids.release(kind, id);
      pass.count('releaseId', subject, false);
      return true;
    } catch (e) {
      this.fail(pass, subject, 'releaseId', e);
      return false;
    }
  }

  /** The next pass looks at everything: every unit planned again, every entry a suspect. */
  private startOver(): void {
    const a = this.applied;
    for (const k of a.frontends.keys()) this.suspectFrontends.add(k);
    for (const vip of a.vips.keys()) this.suspectVips.add(vip);
    for (const id of a.ranges.keys()) this.suspectRanges.add(id);
    for (const id of a.tables.keys()) this.suspectTables.add(id);
    for (const id of a.backendIds()) this.suspectBackends.add(id);
  }

  /** After a bug in a pass: keep nothing but the maps, and look at everything next time. */
  private forgetEverything(): void {
    this.units.clear();
    this.byServiceId.clear();
    this.claimants.clear();
    this.winners.clear();
    this.desiredVips.clear();
    this.withFindings.clear();
    this.unclean.clear();
    this.lastInput = undefined;
    this.ids.dropClaims();
    try {
      this.applied = this.readApplied();
    } catch (e) {
      this.log.error({ err: e }, 'the datapath maps cannot be read');
    }
    this.full = true;
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

  private changes(pass: Pass): UnitChange[] {
    const out: UnitChange[] = [];
    for (const [subject, w] of pass.work) {
      const u = this.units.get(subject)?.plan;
      if (subject === 'vips' && u === undefined) continue;
      // Half-done: its failure is logged now, its change once it is complete.
      if (pass.blocked.has(subject)) continue;
      const active = u?.backends.filter((b) => b.state === 'active').length ?? 0;
      out.push({
        unit: subject,
        change:
          u === undefined ? 'removed' : (this.existed.get(subject) ?? true) ? 'changed' : 'added',
        ...(u !== undefined ? { serviceId: u.serviceId } : {}),
        frontends: u?.frontends.length ?? 0,
        backends: { active, terminating: (u?.backends.length ?? 0) - active },
        tableSwapped: w.tableSwapped,
        writes: w.writes,
      });
    }
    return out.sort((x, y) => byKey(x.unit, y.unit));
  }

  private updateGauges(durationSeconds: number): void {
    const m = this.metrics;
    m.duration.observe(durationSeconds);
    m.services.set(this.byServiceId.size);
    m.frontends.set(this.applied.frontends.size);
    m.backends.set({ state: 'active' }, this.applied.activeBackends);
    m.backends.set({ state: 'terminating' }, this.applied.backends - this.applied.activeBackends);
  }

  private plannedUnits(): PlannedUnit[] {
    const out: PlannedUnit[] = [];
    for (const s of this.units.values()) if (s.plan !== undefined) out.push(s.plan);
    return out;
  }

  /** The units as last planned, with their ids. */
  snapshot(): UnitSnapshot[] {
    return this.plannedUnits()
      .sort((a, b) => byKey(a.key, b.key))
      .map((u) => ({
        key: u.key,
        serviceId: u.serviceId,
        backendIds: Object.fromEntries(u.backends.map((b, i) => [b.identity, u.backendIds[i]!])),
        frontends: u.frontends.map((f) => `${f.vip}:${f.port}/${f.proto}`),
      }));
  }

  /** Labels of each programmed unit's counters (see registerDatapathMetrics). */
  serviceCounterLabels(): ServiceCounterLabels[] {
    return this.plannedUnits().map((u) => ({
      serviceId: u.serviceId,
      service: u.unit.service,
      port: String(u.unit.servicePort),
      protocol: u.unit.protocol,
      family: `IPv${u.unit.family}`,
    }));
  }
}
