// One unit -> what the maps should hold for it, keyed by the ids the datapath
// uses. Pure apart from the id claims it is handed: no map is read or written
// here. The reconciler plans only the units that changed; what needs all
// units at once (a frontend claimed by two) is settled by frontendWinner.
import { hash } from 'node:crypto';

import { checkTableSize } from '../maglev/primes.js';
import { buildTable } from '../maglev/table.js';
import type { Unit } from '../model/types.js';
import { canonicalAddress, canonicalCidr, type Family } from './address.js';
import { backendOwner, type Claim, type IdKind } from './ids.js';
import type { TableJob } from './maglev-workers.js';
import { isCanonicalIPv4, type BackendEntry, type Frontend, type ServiceEntry } from './maps.js';

/**
 * A backend as xlb_backends should hold it, with its Maglev identity and
 * weight: the model's own (frozen) object when it already is one (canonical
 * addresses, its node's address), so 100,000 backends are not held twice.
 */
export interface PlannedBackend extends BackendEntry {
  readonly identity: string;
  readonly weight: number;
}

/** A planned backend with its id. */
export interface IdentifiedBackend {
  backend: PlannedBackend;
  id: number;
}

/** What to do with a unit's Maglev table. */
export type PlannedTable =
  /**
   * Install the table of the unit's active backends (built by buildUnitTable
   * when it is installed, never kept), unless the installed one has this
   * digest: the digest of the table's inputs, which decide it whole.
   */
  | { kind: 'set'; size: number; digest: string }
  /** No active backend: no table, so new flows drop with NO_BACKEND. */
  | { kind: 'none' }
  /** The table cannot be built from this state: leave what is installed. */
  | { kind: 'keep' };

export interface PlannedUnit {
  key: string;
  unit: Unit;
  serviceId: number;
  service: ServiceEntry;
  /** The frontends this unit won (a frontend claimed by two units goes to one). */
  frontends: Frontend[];
  backends: readonly PlannedBackend[];
  /** The backends' ids, in the same order. */
  backendIds: Uint32Array;
  table: PlannedTable;
  /** CIDRs of the unit's family, canonical. */
  ranges: ReadonlySet<string>;
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

export interface PlanContext {
  /** The owner's id (allocated if new); throws IdsExhaustedError when none is free. */
  claim(kind: IdKind, owner: string, parent?: number): Claim;
  /** This node's address of a family: the node of local backends that name none. */
  nodeAddress(family: Family): string;
}

export const frontendKey = (f: Frontend): string => `${f.vip}|${f.port}|${f.proto}`;

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const reasonOf = (e: unknown): string =>
  e instanceof Error && 'reason' in e && typeof e.reason === 'string' ? e.reason : '';

/** No id for an owner: none free (idsExhausted), or the id map refused the write. */
export function claimFailure(unit: string, e: unknown): PlanFinding {
  return {
    unit,
    op: 'allocateId',
    reason: reasonOf(e) === 'idsExhausted' ? 'idsExhausted' : 'idMapError',
    message: errorText(e),
    retryable: true,
  };
}

export function duplicateUnit(key: string): PlanFinding {
  return {
    unit: key,
    op: 'allocateId',
    reason: 'invalidUnit',
    message: `unit ${key} is listed twice; the first one is used`,
    retryable: false,
  };
}

function familyOf(address: string): Family {
  return address.includes(':') ? 6 : 4;
}

/** canonicalAddress, without parsing what is already a canonical dotted quad. */
function canonical(address: string): string {
  return isCanonicalIPv4(address) ? address : canonicalAddress(address);
}

/** The unit's frontends as the datapath keys them: canonical, valid, each once. */
export function unitFrontends(unit: Unit): { frontends: Frontend[]; findings: PlanFinding[] } {
  const findings: PlanFinding[] = [];
  const frontends: Frontend[] = [];
  const mine = new Set<string>();
  for (const f of unit.frontends) {
    let fe: Frontend;
    try {
      fe = { vip: canonical(f.address), port: f.port, proto: f.protocol };
      if (familyOf(fe.vip) !== unit.family) throw new Error(`is not an IPv${unit.family} address`);
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
    frontends.push(fe);
  }
  return { frontends, findings };
}

/**
 * The model settles conflicts between Services; this is the last guard, so
 * two units never take turns on one frontend: the unit whose service id the
 * frontend leads to now (`holder`) keeps it, else the first unit by key.
 */
export function frontendWinner(
  claimants: Iterable<{ key: string; serviceId: number }>,
  holder: number | undefined,
): string | undefined {
  let first: string | undefined;
  for (const c of claimants) {
    if (c.serviceId === holder) return c.key;
    if (first === undefined || c.key < first) first = c.key;
  }
  return first;
}

export function frontendConflict(loser: string, frontend: string, winner: string): PlanFinding {
  return {
    unit: loser,
    op: 'frontend',
    reason: 'frontendConflict',
    message: `frontend ${frontend.replaceAll('|', ' ')} is also claimed by ${winner}, which keeps it`,
    retryable: false,
  };
}

/**
 * Everything but the frontends' owners: `frontends` are the ones this unit
 * won. Claims the ids of the unit's backends.
 */
export function planUnit(
  unit: Unit,
  claim: Claim,
  frontends: Frontend[],
  ctx: PlanContext,
): { planned: PlannedUnit; findings: PlanFinding[] } {
  const findings: PlanFinding[] = [];
  const { backends, ids } = planBackends(unit, claim.id, ctx, findings);
  const backendIds = Uint32Array.from(ids);
  const planned: PlannedUnit = {
    key: unit.key,
    unit,
    serviceId: claim.id,
    service: {
      id: claim.id,
      sourceRanges: unit.sourceRanges.enforced,
      ...(unit.affinityTimeoutSeconds !== undefined
        ? { affinityTimeoutSeconds: unit.affinityTimeoutSeconds }
        : {}),
    },
    frontends,
    backends,
    backendIds,
    table: planTable(unit, backends, backendIds, findings),
    ranges: planRanges(unit, findings),
  };
  return { planned, findings };
}

/** Node addresses repeat across every backend of a node: parse each once. */
const nodeAddresses = new Map<string, string>();

function canonicalNode(address: string): string {
  let c = nodeAddresses.get(address);
  if (c === undefined) {
    c = canonical(address);
    if (nodeAddresses.size > 4096) nodeAddresses.clear();
    nodeAddresses.set(address, c);
  }
  return c;
}

function planBackends(
  unit: Unit,
  serviceId: number,
  ctx: PlanContext,
  findings: PlanFinding[],
): { backends: PlannedBackend[]; ids: number[] } {
  const backends: PlannedBackend[] = [];
  const ids: number[] = [];
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
    let address: string;
    let nodeAddress: string;
    try {
      address = canonical(b.address);
      if (familyOf(address) !== unit.family) throw new Error(`is not an IPv${unit.family} address`);
      if (b.nodeAddress === undefined && !b.local)
        throw new Error('runs on another node whose address is unknown');
      nodeAddress = canonicalNode(b.nodeAddress ?? ctx.nodeAddress(unit.family));
      if (familyOf(nodeAddress) !== unit.family)
        throw new Error(`its node address ${nodeAddress} is not IPv${unit.family}`);
      if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535)
        throw new Error(`port ${b.port} is not a port (1-65535)`);
      if (!Number.isInteger(b.weight) || b.weight < 1)
        throw new Error(`weight ${b.weight} is not a positive integer`);
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
    ids.push(claim.id);
    // The model's object when it says it all already; else a plain literal
    // (one that starts with a spread gets a hidden class of its own in V8).
    backends.push(
      address === b.address && nodeAddress === b.nodeAddress
        ? (b as PlannedBackend)
        : {
            address,
            port: b.port,
            nodeAddress,
            state: b.state,
            local: b.local,
            identity: b.identity,
            weight: b.weight,
          },
    );
  }
  return { backends, ids };
}

/** Bumped if the table built from the same inputs could ever differ. */
const TABLE_INPUTS_VERSION = 1;

/** The active backends with their ids, sorted by identity as buildTable sorts them. */
function activeOf(
  backends: readonly PlannedBackend[],
  ids: ArrayLike<number>,
): IdentifiedBackend[] {
  const out: IdentifiedBackend[] = [];
  backends.forEach((backend, i) => {
    if (backend.state === 'active') out.push({ backend, id: ids[i]! });
  });
  return out.sort((a, b) =>
    a.backend.identity < b.backend.identity ? -1 : a.backend.identity > b.backend.identity ? 1 : 0,
  );
}

/** 16 bytes of SHA-256, as hex behind their kind (one-shot: no Hash object per table). */
function digest16(kind: 'in' | 'ct', data: string | Uint8Array): string {
  return `${kind}:${hash('sha256', data, 'buffer').toString('hex', 0, 16)}`;
}

/**
 * Maglev builds the same table from the same size and (identity, weight)
 * list on every node and in every run, and the ids map identities to slots'
 * contents: so these inputs decide the installed table, and their digest
 * stands for it.
 */
export function tableDigest(size: number, active: readonly IdentifiedBackend[]): string {
  const parts = [`${TABLE_INPUTS_VERSION}`, `${size}`];
  for (const { backend: b, id } of active) parts.push(`${b.identity}\t${id}\t${b.weight}`);
  return digest16('in', parts.join('\n'));
}

/** The digest of a table read from the maps whose inputs are unknown: of its slots. */
export function contentDigest(slots: Uint32Array): string {
  return digest16('ct', new Uint8Array(slots.buffer, slots.byteOffset, slots.byteLength));
}

function planTable(
  unit: Unit,
  backends: readonly PlannedBackend[],
  ids: Uint32Array,
  findings: PlanFinding[],
): PlannedTable {
  const active = activeOf(backends, ids);
  if (active.length === 0) return { kind: 'none' };
  try {
    // What buildTable would refuse, found now: the table is built only when installed.
    checkTableSize(unit.tableSize);
    if (active.length > unit.tableSize)
      throw new Error(`${active.length} backends do not fit a table of ${unit.tableSize} slots`);
  } catch (e) {
    findings.push(invalidTable(unit.key, e));
    return { kind: 'keep' };
  }
  return { kind: 'set', size: unit.tableSize, digest: tableDigest(unit.tableSize, active) };
}

export function invalidTable(unit: string, e: unknown): PlanFinding {
  return {
    unit,
    op: 'table',
    reason: 'invalidTable',
    message: `Maglev table not rebuilt: ${errorText(e)}; the installed one stays`,
    retryable: false,
  };
}

/** What building a planned table takes: its size and active backends, sorted as buildTable sorts them. */
export function tableJob(u: PlannedUnit): TableJob {
  const active = activeOf(u.backends, u.backendIds);
  return {
    size: u.unit.tableSize,
    names: active.map((b) => b.backend.identity),
    weights: active.map((b) => b.backend.weight),
  };
}

/**
 * A built table as the datapath holds it: buildTable's slots (indices into
 * the sorted active backends) turned into backend ids, in place, and the
 * distinct ids it names.
 */
export function tableFromIndices(
  u: PlannedUnit,
  table: Uint32Array,
): { slots: Uint32Array; ids: number[] } {
  const idOf = Uint32Array.from(activeOf(u.backends, u.backendIds), (b) => b.id);
  const used = new Uint8Array(idOf.length);
  for (let i = 0; i < table.length; i++) {
    const at = table[i]!;
    used[at] = 1;
    table[i] = idOf[at]!;
  }
  const ids: number[] = [];
  for (let i = 0; i < idOf.length; i++) if (used[i] === 1) ids.push(idOf[i]!);
  return { slots: table, ids: ids.sort((a, b) => a - b) };
}

/** A planned table, built here: backend ids slot by slot, and the distinct ids it names. */
export function buildUnitTable(u: PlannedUnit): { slots: Uint32Array; ids: number[] } {
  const job = tableJob(u);
  const { table } = buildTable(
    job.names.map((name, i) => ({ name, weight: job.weights[i]! })),
    job.size,
  );
  return tableFromIndices(u, table);
}

/** "XLBT": the trailer after a table's last slot is one of ours. */
const TRAILER_MAGIC = 0x54424c58;

/**
 * Words written after a table's last slot, which the datapath never reads:
 * the digest it was built from and the ids it names, so an agent that adopts
 * the table learns both from a few words instead of reading M slots and
 * building the table again to compare.
 */
export function tableTrailer(digest: string, ids: readonly number[]): Uint32Array {
  const out = new Uint32Array(6 + ids.length);
  out[0] = TRAILER_MAGIC;
  const d = Buffer.from(digest.slice(3), 'hex');
  for (let i = 0; i < 4; i++) out[1 + i] = d.readUInt32LE(4 * i);
  out[5] = ids.length;
  out.set(ids, 6);
  return out;
}

export function readTrailer(trailer: Uint32Array): { digest: string; ids: number[] } | undefined {
  if (trailer.length < 6 || trailer[0] !== TRAILER_MAGIC) return undefined;
  const count = trailer[5]!;
  if (trailer.length !== 6 + count) return undefined;
  const d = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) d.writeUInt32LE(trailer[1 + i]!, 4 * i);
  return { digest: `in:${d.toString('hex')}`, ids: Array.from(trailer.subarray(6)) };
}

const NO_RANGES: ReadonlySet<string> = new Set();

function planRanges(unit: Unit, findings: PlanFinding[]): ReadonlySet<string> {
  if (!unit.sourceRanges.enforced || unit.sourceRanges.cidrs.length === 0) return NO_RANGES;
  const out = new Set<string>();
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
