// Units -> what the maps should hold, keyed by the ids the datapath uses.
// Pure apart from the id claims it is handed: no map is read or written here.
import { buildTable } from '../maglev/table.js';
import type { Unit } from '../model/types.js';
import { canonicalAddress, canonicalCidr, type Family } from './address.js';
import { backendOwner, type Claim, type IdKind } from './ids.js';
import type { BackendEntry, Frontend, ServiceEntry } from './maps.js';

export interface PlannedBackend {
  id: number;
  identity: string;
  entry: BackendEntry;
  weight: number;
  fresh: boolean;
}

/** What to do with a unit's Maglev table. */
export type PlannedTable =
  | { kind: 'set'; backendIds: number[] }
  /** No active backend: no table, so new flows drop with NO_BACKEND. */
  | { kind: 'none' }
  /** The table cannot be built from this state: leave what is installed. */
  | { kind: 'keep' };

export interface PlannedUnit {
  key: string;
  unit: Unit;
  serviceId: number;
  freshService: boolean;
  service: ServiceEntry;
  /** The frontends this unit won (a frontend claimed by two units goes to one). */
  frontends: Frontend[];
  backends: PlannedBackend[];
  table: PlannedTable;
  /** CIDRs of the unit's family, canonical. */
  ranges: Set<string>;
}

/** Something in the desired state that cannot be applied as asked. */
export interface PlanFinding {
  unit: string;
  op: 'allocateId' | 'frontend' | 'backend' | 'sourceRange' | 'table';
  reason:
    | 'idsExhausted'
    | 'idMapError'
    | 'frontendConflict'
    | 'invalidFrontend'
    | 'invalidBackend'
    | 'duplicateBackend'
    | 'invalidSourceRange'
    | 'invalidTable'
    | 'invalidUnit';
  message: string;
  /** Worth trying again with the same desired state (ids free up over time). */
  retryable: boolean;
}

export interface Plan {
  units: PlannedUnit[];
  findings: PlanFinding[];
}

export interface PlanContext {
  /** The owner's id (allocated if new); throws IdsExhaustedError when none is free. */
  claim(kind: IdKind, owner: string, parent?: number): Claim;
  /** This node's address of a family: the node of local backends that name none. */
  nodeAddress(family: Family): string;
  /** The service id the frontend currently leads to, if any: its holder keeps it in a conflict. */
  appliedServiceId(frontendKey: string): number | undefined;
  /**
   * Tables built in earlier passes, by unit key: a table of 16381 slots takes
   * about half a millisecond to build, and most passes change few units.
   */
  tables?: Map<string, { signature: string; table: PlannedTable }>;
}

export const frontendKey = (f: Frontend): string => `${f.vip}|${f.port}|${f.proto}`;

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const reasonOf = (e: unknown): string =>
  e instanceof Error && 'reason' in e && typeof e.reason === 'string' ? e.reason : '';

/** No id for an owner: none free (idsExhausted), or the id map refused the write. */
function claimFailure(unit: string, e: unknown): PlanFinding {
  return {
    unit,
    op: 'allocateId',
    reason: reasonOf(e) === 'idsExhausted' ? 'idsExhausted' : 'idMapError',
    message: errorText(e),
    retryable: true,
  };
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

export function planUnits(units: readonly Unit[], ctx: PlanContext): Plan {
  const findings: PlanFinding[] = [];
  const sorted = [...units].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  // Ids first, so conflicts can be settled in favour of whoever holds a frontend now.
  const withIds: Array<{ unit: Unit; claim: Claim }> = [];
  const seenKeys = new Set<string>();
  for (const unit of sorted) {
    if (seenKeys.has(unit.key)) {
      findings.push({
        unit: unit.key,
        op: 'allocateId',
        reason: 'invalidUnit',
        message: `unit ${unit.key} is listed twice; the first one is used`,
        retryable: false,
      });
      continue;
    }
    seenKeys.add(unit.key);
    try {
      withIds.push({ unit, claim: ctx.claim('unit', unit.key) });
    } catch (e) {
      findings.push(claimFailure(unit.key, e));
    }
  }

  const frontendsOf = new Map<string, Frontend[]>();
  const claimants = new Map<string, Array<{ key: string; serviceId: number }>>();
  for (const { unit, claim } of withIds) {
    const list: Frontend[] = [];
    const mine = new Set<string>();
    for (const f of unit.frontends) {
      let fe: Frontend;
      try {
        fe = { vip: canonicalAddress(f.address), port: f.port, proto: f.protocol };
        if (familyOf(fe.vip) !== unit.family)
          throw new Error(`is not an IPv${unit.family} address`);
        if (!Number.isInteger(f.port) || f.port < 1 || f.port > 65535)
          throw new Error(`port ${f.port} is not a port (1-65535)`);
      } catch (e) {
        findings.push({
          unit: unit.key,
          op: 'frontend',
          reason: 'invalidFrontend',
          message: `frontend ${f.address}:${f.port}/${f.protocol}: ${errorText(e)}; left out`,
          retryable: false,
        });
        continue;
      }
      const k = frontendKey(fe);
      if (mine.has(k)) continue;
      mine.add(k);
      list.push(fe);
      const c = claimants.get(k) ?? [];
      c.push({ key: unit.key, serviceId: claim.id });
      claimants.set(k, c);
    }
    frontendsOf.set(unit.key, list);
  }
  // The model settles conflicts between Services; this is the last guard, so
  // two units never take turns on one frontend: its holder keeps it, else the
  // first unit by key.
  const winner = new Map<string, string>();
  for (const [k, c] of claimants) {
    const holder = ctx.appliedServiceId(k);
    const w = c.find((x) => x.serviceId === holder) ?? c[0]!;
    winner.set(k, w.key);
    for (const loser of c) {
      if (loser.key === w.key) continue;
      findings.push({
        unit: loser.key,
        op: 'frontend',
        reason: 'frontendConflict',
        message: `frontend ${k.replaceAll('|', ' ')} is also claimed by ${w.key}, which keeps it`,
        retryable: false,
      });
    }
  }

  const planned: PlannedUnit[] = [];
  for (const { unit, claim } of withIds) {
    const frontends = frontendsOf
      .get(unit.key)!
      .filter((f) => winner.get(frontendKey(f)) === unit.key);
    const backends = planBackends(unit, claim.id, ctx, findings);
    planned.push({
      key: unit.key,
      unit,
      serviceId: claim.id,
      freshService: claim.fresh,
      service: {
        id: claim.id,
        sourceRanges: unit.sourceRanges.enforced,
        ...(unit.affinityTimeoutSeconds !== undefined
          ? { affinityTimeoutSeconds: unit.affinityTimeoutSeconds }
          : {}),
      },
      frontends,
      backends,
      table: memoTable(unit, backends, findings, ctx.tables),
      ranges: planRanges(unit, findings),
    });
  }
  return { units: planned, findings };
}

function planBackends(
  unit: Unit,
  serviceId: number,
  ctx: PlanContext,
  findings: PlanFinding[],
): PlannedBackend[] {
  const out: PlannedBackend[] = [];
  const seen = new Set<string>();
  for (const b of unit.backends) {
    const what = `backend ${b.identity}`;
    if (seen.has(b.identity)) {
      findings.push({
        unit: unit.key,
        op: 'backend',
        reason: 'duplicateBackend',
        message: `${what} is listed twice; the first one is used`,
        retryable: false,
      });
      continue;
    }
    let entry: BackendEntry;
    try {
      const address = canonicalAddress(b.address);
      if (familyOf(address) !== unit.family) throw new Error(`is not an IPv${unit.family} address`);
      if (b.nodeAddress === undefined && !b.local)
        throw new Error('runs on another node whose address is unknown');
      const nodeAddress = canonicalAddress(b.nodeAddress ?? ctx.nodeAddress(unit.family));
      if (familyOf(nodeAddress) !== unit.family)
        throw new Error(`its node address ${nodeAddress} is not IPv${unit.family}`);
      if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535)
        throw new Error(`port ${b.port} is not a port (1-65535)`);
      if (!Number.isInteger(b.weight) || b.weight < 1)
        throw new Error(`weight ${b.weight} is not a positive integer`);
      entry = { address, port: b.port, nodeAddress, state: b.state, local: b.local };
    } catch (e) {
      findings.push({
        unit: unit.key,
        op: 'backend',
        reason: 'invalidBackend',
        message: `${what}: ${errorText(e)}; left out`,
        retryable: false,
      });
      continue;
    }
    seen.add(b.identity);
    let claim: Claim;
    try {
      claim = ctx.claim('backend', backendOwner(unit.key, b.identity), serviceId);
    } catch (e) {
      findings.push(claimFailure(unit.key, e));
      continue;
    }
    out.push({ id: claim.id, identity: b.identity, entry, weight: b.weight, fresh: claim.fresh });
  }
  return out;
}

function memoTable(
  unit: Unit,
  backends: PlannedBackend[],
  findings: PlanFinding[],
  memo: PlanContext['tables'],
): PlannedTable {
  if (memo === undefined) return planTable(unit, backends, findings);
  const active = backends.filter((b) => b.entry.state === 'active');
  const signature = JSON.stringify([
    unit.tableSize,
    active.map((b) => [b.identity, b.weight, b.id]).sort(),
  ]);
  const hit = memo.get(unit.key);
  if (hit?.signature === signature && hit.table.kind !== 'keep') return hit.table;
  const table = planTable(unit, backends, findings);
  memo.set(unit.key, { signature, table });
  return table;
}

function planTable(unit: Unit, backends: PlannedBackend[], findings: PlanFinding[]): PlannedTable {
  const active = backends.filter((b) => b.entry.state === 'active');
  if (active.length === 0) return { kind: 'none' };
  try {
    const { order, table } = buildTable(
      active.map((b) => ({ name: b.identity, weight: b.weight })),
      unit.tableSize,
    );
    const idOf = new Map(active.map((b) => [b.identity, b.id]));
    const ids = order.map((b) => idOf.get(b.name)!);
    return { kind: 'set', backendIds: Array.from(table, (i) => ids[i]!) };
  } catch (e) {
    findings.push({
      unit: unit.key,
      op: 'table',
      reason: 'invalidTable',
      message: `Maglev table not rebuilt: ${errorText(e)}; the installed one stays`,
      retryable: false,
    });
    return { kind: 'keep' };
  }
}

function planRanges(unit: Unit, findings: PlanFinding[]): Set<string> {
  const out = new Set<string>();
  if (!unit.sourceRanges.enforced) return out;
  for (const text of unit.sourceRanges.cidrs) {
    try {
      const c = canonicalCidr(text);
      // An enforced unit with no range of its family admits nobody.
      if (c.family === unit.family) out.add(c.cidr);
    } catch (e) {
      findings.push({
        unit: unit.key,
        op: 'sourceRange',
        reason: 'invalidSourceRange',
        message: `${errorText(e)}; left out (fewer clients admitted, never more)`,
        retryable: false,
      });
    }
  }
  return out;
}
