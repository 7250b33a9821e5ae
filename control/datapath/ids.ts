// Ids of units (index of xlb_maglev, xlb_service_stats and the source ranges)
// and of backends (index of xlb_backends), persisted in a pinned map the
// control plane owns, so a restarted agent gives every unit and backend the
// id it had and every Maglev table comes out identical.
//
// A freed id waits in quarantine before anyone else gets it: the connection
// table may still name it, and a flow pinned to a freed backend must be
// balanced afresh, never steered to a different pod that inherited the id.
import { hash } from 'node:crypto';

import { BpfMap, MapFlag } from '../../native/index.js';
import type { DatapathMaps } from './maps.js';

export type IdKind = 'unit' | 'backend';

/** How long a freed id stays unused: longer than an idle flow lives in the connection table. */
export const QUARANTINE_MS = 10 * 60 * 1000;

export const ID_MAP_NAME = 'xlb_ids';
/** Bumped when the record layout below changes; a map of another format is not read. */
export const ID_MAP_FORMAT = 1;

const KEY_SIZE = 20; // 16 bytes of SHA-256 of the owner + u32 kind
const VALUE_SIZE = 24; // u32 id, u32 parent, u64 allocated at (ms), u64 freed at (ms; 0 = in use)

export class IdsExhaustedError extends Error {
  readonly reason = 'idsExhausted';

  constructor(
    readonly kind: IdKind,
    readonly owner: string,
    readonly capacity: number,
    readonly quarantined: number,
  ) {
    const map = kind === 'unit' ? 'xlb_maglev' : 'xlb_backends';
    super(
      `no free ${kind} id for '${owner}': all ${capacity} ids are taken` +
        (quarantined > 0
          ? ` (${quarantined} of them freed in the last ${QUARANTINE_MS / 60000} minutes and held back ` +
            'until flows that may still name them are gone)'
          : '') +
        `; remove unused Services or load the datapath with a larger ${map}`,
    );
    this.name = 'IdsExhaustedError';
  }
}

export class IdMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IdMapError';
  }
}

/**
 * Which ids are taken and which wait in quarantine; hands out free ones
 * round-robin, so a freed id comes back as late as possible. Pure. A state
 * byte per id, not Sets: a node holds up to 100,000 backend ids.
 */
export class IdPool {
  /** Per id: FREE, USED or HELD. */
  private readonly state: Uint8Array;
  private readonly freedAt: Float64Array;
  /** Quarantined ids, to look through for due ones (few, usually). */
  private readonly held = new Set<number>();
  private used = 0;
  /** No held id was freed before this: due() can answer without looking at each. */
  private earliestFreed = Number.POSITIVE_INFINITY;
  /** The next id to try. */
  private cursor = 1;

  /** Valid ids are 1..max (0 means "none" to the datapath). */
  constructor(
    readonly max: number,
    readonly quarantineMs = QUARANTINE_MS,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`an id pool needs max >= 1, not ${max}`);
    this.state = new Uint8Array(max + 1);
    this.freedAt = new Float64Array(max + 1);
  }

  valid(id: number): boolean {
    return Number.isInteger(id) && id >= 1 && id <= this.max;
  }

  known(id: number): boolean {
    return this.valid(id) && this.state[id] !== FREE;
  }

  inUse(id: number): boolean {
    return this.valid(id) && this.state[id] === USED;
  }

  get usedCount(): number {
    return this.used;
  }

  get quarantinedCount(): number {
    return this.held.size;
  }

  private set(id: number, state: number): void {
    const was = this.state[id];
    if (was === USED) this.used--;
    if (was === HELD) this.held.delete(id);
    this.state[id] = state;
    if (state === USED) this.used++;
    if (state === HELD) this.held.add(id);
  }

  /** Marks an id taken (restored from the map, or its owner came back from quarantine). */
  take(id: number): void {
    this.set(id, USED);
  }

  /** Restores an id that was freed at `freedAt`. */
  hold(id: number, freedAt: number): void {
    this.set(id, HELD);
    this.freedAt[id] = freedAt;
    this.earliestFreed = Math.min(this.earliestFreed, freedAt);
  }

  /** Frees a taken id into quarantine. */
  free(id: number, now: number): void {
    if (this.inUse(id)) this.hold(id, now);
  }

  /** Forgets an id altogether (an allocation that could not be recorded). */
  forget(id: number): void {
    if (this.valid(id)) this.set(id, FREE);
  }

  /** Round-robin resumes after this id. */
  resumeAfter(id: number): void {
    this.cursor = (id % this.max) + 1;
  }

  /** Quarantined ids whose time is up, without freeing them. */
  due(now: number): number[] {
    // Asked every reconcile pass: most passes come long before any id is due.
    if (now - this.earliestFreed < this.quarantineMs) return [];
    const out: number[] = [];
    for (const id of this.held) if (now - this.freedAt[id]! >= this.quarantineMs) out.push(id);
    return out;
  }

  /** Quarantined ids whose time is up; they become free. */
  expire(now: number): number[] {
    const out = this.due(now);
    for (const id of out) this.set(id, FREE);
    if (out.length > 0) {
      this.earliestFreed = Number.POSITIVE_INFINITY;
      for (const id of this.held)
        this.earliestFreed = Math.min(this.earliestFreed, this.freedAt[id]!);
    }
    return out;
  }

  /** A free id, now taken, or undefined when every id is taken or held. */
  allocate(): number | undefined {
    for (let i = 0; i < this.max; i++) {
      const id = ((this.cursor - 1 + i) % this.max) + 1;
      if (this.state[id] !== FREE) continue;
      this.set(id, USED);
      this.resumeAfter(id);
      return id;
    }
    return undefined;
  }
}

const FREE = 0;
const USED = 1;
const HELD = 2;

/** Where the records live: a BPF hash map in the agent, a Map in tests. */
export interface IdStore {
  entries(): Iterable<[Buffer, Buffer]>;
  update(key: Buffer, value: Buffer): void;
  delete(key: Buffer): boolean;
}

interface IdRecord {
  id: number;
  /** A backend's unit id, so what a restarted agent removes can be told per unit. */
  parent: number;
  allocatedAt: number;
  /** 0 while the owner holds it. */
  freedAt: number;
}

const kindCode: Record<IdKind | 'meta', number> = { meta: 0, unit: 1, backend: 2 };
const refScratch = Buffer.alloc(KEY_SIZE);

/**
 * A record's key as a string of its 20 bytes (latin1): what the records are
 * found by, compact (written out flat: a string built of slices would keep
 * the whole digest alive with it, for each of 100,000 records).
 */
function recordRef(kind: IdKind | 'meta', owner: string): string {
  // One-shot hash: a Hash object per claim has native state that outlives
  // young-generation collections, and 100,000 of them fill the old one.
  refScratch.write(hash('sha256', `${kind}\0${owner}`, 'binary'), 0, 16, 'latin1');
  refScratch.writeUInt32LE(kindCode[kind], 16);
  return refScratch.toString('latin1');
}

const refKey = (ref: string): Buffer => Buffer.from(ref, 'latin1');

function recordKey(kind: IdKind | 'meta', owner: string): Buffer {
  return refKey(recordRef(kind, owner));
}

function encodeRecord(r: IdRecord): Buffer {
  // From the pool (every byte is written): a sync writes 100,000 records.
  const v = Buffer.allocUnsafe(VALUE_SIZE);
  v.writeUInt32LE(r.id, 0);
  v.writeUInt32LE(r.parent, 4);
  v.writeBigUInt64LE(BigInt(r.allocatedAt), 8);
  v.writeBigUInt64LE(BigInt(r.freedAt), 16);
  return v;
}

function decodeRecord(v: Buffer): IdRecord {
  return {
    id: v.readUInt32LE(0),
    parent: v.readUInt32LE(4),
    allocatedAt: Number(v.readBigUInt64LE(8)),
    freedAt: Number(v.readBigUInt64LE(16)),
  };
}

const FORMAT_KEY = recordKey('meta', 'format');

export const backendOwner = (unitKey: string, identity: string): string =>
  `${unitKey}\0${identity}`;
/** Ids found in the datapath's maps that no record names (e.g. written by an older agent). */
const orphanOwner = (id: number): string => `\0orphan\0${id}`;

export interface IdCapacities {
  units: number;
  backends: number;
}

/** The highest usable ids, from the maps' sizes as loaded (so sizes set at load time count). */
export function idCapacities(maps: DatapathMaps): IdCapacities {
  const max = (...names: Parameters<DatapathMaps['map']>[0][]): number =>
    Math.min(...names.map((n) => maps.map(n).info.maxEntries)) - 1;
  return {
    units: max('xlb_maglev', 'xlb_service_stats'),
    backends: max('xlb_backends', 'xlb_backend_stats', 'xlb_nexthops'),
  };
}

/** A new, empty id map big enough for every id of both kinds. */
export function createIdMap(capacities: IdCapacities): BpfMap {
  return BpfMap.create({
    type: 'hash',
    name: ID_MAP_NAME,
    keySize: KEY_SIZE,
    valueSize: VALUE_SIZE,
    maxEntries: capacities.units + capacities.backends + 1,
    flags: MapFlag.noPrealloc,
  });
}

/** True when `map` is an id map this code can read (layout and format). */
export function isIdMap(map: BpfMap): boolean {
  if (map.info.keySize !== KEY_SIZE || map.info.valueSize !== VALUE_SIZE) return false;
  const format = map.lookup(FORMAT_KEY);
  return format === undefined
    ? map.keys().next().done === true
    : format.readUInt32LE(0) === ID_MAP_FORMAT;
}

export interface Claim {
  id: number;
  /** Newly allocated in this call: whatever the datapath counted under it belongs to someone else. */
  fresh: boolean;
}

/**
 * One kind's records, pool and claims, by id: a node may hold 100,000 of
 * them, so a record is a few typed-array slots, not an object.
 */
class KindTable {
  readonly pool: IdPool;
  /** Record key -> its id, for records in use or quarantined. */
  readonly byRef = new Map<string, number>();
  /** id -> its record's key; undefined: no record. */
  readonly ref: Array<string | undefined>;
  /** A backend's unit id. */
  readonly parent: Uint32Array;
  readonly allocatedAt: Float64Array;
  /** 0 while the owner holds the id. */
  readonly freedAt: Float64Array;
  readonly claimed: Uint8Array;
  /**
   * Ids in use that no owner claims: kept as claims come and go, so finding
   * them costs nothing when an incremental pass claimed only what changed.
   */
  readonly unclaimed = new Set<number>();

  constructor(max: number, quarantineMs: number) {
    this.pool = new IdPool(max, quarantineMs);
    this.ref = new Array<string | undefined>(max + 1);
    this.parent = new Uint32Array(max + 1);
    this.allocatedAt = new Float64Array(max + 1);
    this.freedAt = new Float64Array(max + 1);
    this.claimed = new Uint8Array(max + 1);
  }

  inUse(id: number): boolean {
    return this.ref[id] !== undefined && this.freedAt[id] === 0;
  }

  record(id: number): IdRecord {
    return {
      id,
      parent: this.parent[id]!,
      allocatedAt: this.allocatedAt[id]!,
      freedAt: this.freedAt[id]!,
    };
  }

  set(ref: string, r: IdRecord): void {
    this.byRef.set(ref, r.id);
    this.ref[r.id] = ref;
    this.parent[r.id] = r.parent;
    this.allocatedAt[r.id] = r.allocatedAt;
    this.freedAt[r.id] = r.freedAt;
  }

  forget(id: number): void {
    const ref = this.ref[id];
    if (ref !== undefined) this.byRef.delete(ref);
    this.ref[id] = undefined;
    this.claimed[id] = 0;
    this.unclaimed.delete(id);
  }
}

/**
 * Ids for units and backends, persisted in `store`. Claims last until
 * dropped: a reconciler that sees every owner each pass starts it with
 * beginPass() (all claims dropped) and claims them again; an incremental one
 * starts with expireDue(), claims what is new and unclaims what went. Either
 * way, what no owner claims is what the reconciler removes and then releases.
 */
export class DatapathIds {
  private readonly tables: Record<IdKind, KindTable>;

  private constructor(
    private readonly store: IdStore,
    readonly capacities: IdCapacities,
    private readonly now: () => number,
    quarantineMs: number,
  ) {
    this.tables = {
      unit: new KindTable(capacities.units, quarantineMs),
      backend: new KindTable(capacities.backends, quarantineMs),
    };
  }

  static open(
    store: IdStore,
    capacities: IdCapacities,
    options: { now?: () => number; quarantineMs?: number } = {},
  ): DatapathIds {
    const ids = new DatapathIds(
      store,
      capacities,
      options.now ?? Date.now,
      options.quarantineMs ?? QUARANTINE_MS,
    );
    ids.load();
    return ids;
  }

  private load(): void {
    const entries = [...this.store.entries()];
    const format = entries.find(([k]) => k.equals(FORMAT_KEY));
    if (format === undefined) {
      if (entries.length > 0) {
        throw new IdMapError(
          'the id map has records but no format record: it was not written by xlb',
        );
      }
      this.store.update(
        FORMAT_KEY,
        encodeRecord({ id: ID_MAP_FORMAT, parent: 0, allocatedAt: 0, freedAt: 0 }),
      );
    } else if (decodeRecord(format[1]).id !== ID_MAP_FORMAT) {
      throw new IdMapError(
        `the id map has format ${decodeRecord(format[1]).id}, this agent reads format ${ID_MAP_FORMAT}`,
      );
    }
    const newest: Record<IdKind, IdRecord | undefined> = { unit: undefined, backend: undefined };
    // Sorted, so that of two records claiming one id (never written by this
    // code, but a map can be edited by hand) the same one wins every time.
    entries.sort(([a], [b]) => a.compare(b));
    for (const [key, value] of entries) {
      const code = key.readUInt32LE(16);
      const kind: IdKind | undefined = code === 1 ? 'unit' : code === 2 ? 'backend' : undefined;
      if (kind === undefined) continue;
      const t = this.tables[kind];
      const r = decodeRecord(value);
      if (!t.pool.valid(r.id) || t.pool.known(r.id)) {
        // Out of range after the maps were made smaller, or a duplicate.
        this.store.delete(key);
        continue;
      }
      t.set(key.toString('latin1'), r);
      if (r.freedAt === 0) {
        t.pool.take(r.id);
        t.unclaimed.add(r.id);
      } else t.pool.hold(r.id, r.freedAt);
      const n = newest[kind];
      // Ties (one millisecond) go to the higher id: round-robin handed it out later.
      if (
        n === undefined ||
        r.allocatedAt > n.allocatedAt ||
        (r.allocatedAt === n.allocatedAt && r.id > n.id)
      )
        newest[kind] = r;
    }
    for (const kind of ['unit', 'backend'] as const) {
      const n = newest[kind];
      if (n !== undefined) this.tables[kind].pool.resumeAfter(n.id);
    }
  }

  /**
   * Starts a pass: forgets the last pass's claims and frees quarantined ids
   * whose time is up (their records go). `beforeReuse` sees those ids first,
   * to scrub what the datapath still says about them; if it throws, they stay
   * in quarantine until the next pass.
   */
  beginPass(beforeReuse?: (due: Record<IdKind, number[]>) => void): void {
    this.dropClaims();
    this.expireDue(beforeReuse);
  }

  /** Forgets every claim: each owner that is still wanted claims its id again. */
  dropClaims(): void {
    for (const t of Object.values(this.tables)) {
      t.claimed.fill(0);
      for (let id = 1; id <= t.pool.max; id++) if (t.inUse(id)) t.unclaimed.add(id);
    }
  }

  /**
   * Frees quarantined ids whose time is up, keeping every claim: the start
   * of a pass that claims only what changed. `beforeReuse` as for beginPass.
   */
  expireDue(beforeReuse?: (due: Record<IdKind, number[]>) => void): void {
    const now = this.now();
    const due = {
      unit: this.tables.unit.pool.due(now),
      backend: this.tables.backend.pool.due(now),
    };
    if (due.unit.length + due.backend.length === 0) return;
    beforeReuse?.(due);
    for (const t of Object.values(this.tables)) {
      for (const id of t.pool.expire(now)) {
        const ref = t.ref[id];
        if (ref === undefined) continue;
        t.forget(id);
        this.store.delete(refKey(ref));
      }
    }
  }

  /**
   * The owner's id, allocating one if it has none; throws IdsExhaustedError.
   * `parent`: a backend's unit id.
   */
  claim(kind: IdKind, owner: string, parent = 0): Claim {
    const t = this.tables[kind];
    const ref = recordRef(kind, owner);
    const known = t.byRef.get(ref);
    if (known !== undefined && t.freedAt[known] === 0) {
      if (t.parent[known] !== parent) {
        this.store.update(refKey(ref), encodeRecord({ ...t.record(known), parent }));
        t.parent[known] = parent;
      }
      t.claimed[known] = 1;
      t.unclaimed.delete(known);
      return { id: known, fresh: false };
    }
    if (known !== undefined) {
      // The owner came back while its id waited in quarantine: the id still
      // means this very backend (or unit), so it gets it back.
      const back = { ...t.record(known), parent, freedAt: 0 };
      this.store.update(refKey(ref), encodeRecord(back));
      t.set(ref, back);
      t.pool.take(known);
      t.claimed[known] = 1;
      return { id: known, fresh: false };
    }
    const id = t.pool.allocate();
    if (id === undefined) {
      throw new IdsExhaustedError(kind, owner, t.pool.max, t.pool.quarantinedCount);
    }
    const record = { id, parent, allocatedAt: this.now(), freedAt: 0 };
    try {
      this.store.update(refKey(ref), encodeRecord(record));
    } catch (e) {
      t.pool.forget(id);
      throw e;
    }
    t.set(ref, record);
    t.claimed[id] = 1;
    return { id, fresh: true };
  }

  /** The owner's id if it holds one, without claiming or allocating. */
  peek(kind: IdKind, owner: string): number | undefined {
    const t = this.tables[kind];
    const id = t.byRef.get(recordRef(kind, owner));
    return id !== undefined && t.freedAt[id] === 0 ? id : undefined;
  }

  /** The unit id a backend id was claimed under (0: unknown). */
  parentOf(kind: IdKind, id: number): number {
    const t = this.tables[kind];
    return t.pool.valid(id) && t.inUse(id) ? t.parent[id]! : 0;
  }

  /** True when the id is taken (by an owner, claimed or not) or in quarantine. */
  known(kind: IdKind, id: number): boolean {
    return this.tables[kind].pool.known(id);
  }

  /** True when an owner claims the id (it is wanted). */
  isClaimed(kind: IdKind, id: number): boolean {
    const t = this.tables[kind];
    return t.pool.valid(id) && t.claimed[id] === 1;
  }

  /**
   * Records an id found in the datapath's maps that no owner holds, so it is
   * neither handed out while in use nor reused at once after its removal.
   */
  adoptOrphan(kind: IdKind, id: number): void {
    const t = this.tables[kind];
    if (!t.pool.valid(id) || t.pool.known(id)) return;
    const ref = recordRef(kind, orphanOwner(id));
    const record = { id, parent: 0, allocatedAt: 0, freedAt: 0 };
    this.store.update(refKey(ref), encodeRecord(record));
    t.set(ref, record);
    t.pool.take(id);
    t.unclaimed.add(id);
  }

  /** Drops the claim on an id (its owner is no longer wanted); its state may still be in the maps. */
  unclaim(kind: IdKind, id: number): void {
    const t = this.tables[kind];
    if (!t.pool.valid(id) || !t.inUse(id)) return;
    t.claimed[id] = 0;
    t.unclaimed.add(id);
  }

  /** Ids in use that no owner claims. */
  unclaimed(kind: IdKind): number[] {
    return [...this.tables[kind].unclaimed].sort((a, b) => a - b);
  }

  /** Moves an unclaimed id to quarantine. */
  release(kind: IdKind, id: number): void {
    const t = this.tables[kind];
    if (!t.pool.valid(id) || !t.inUse(id) || t.claimed[id] === 1) return;
    const ref = t.ref[id]!;
    const freed = { ...t.record(id), freedAt: Math.max(1, this.now()) };
    this.store.update(refKey(ref), encodeRecord(freed));
    t.freedAt[id] = freed.freedAt;
    t.unclaimed.delete(id);
    t.pool.free(id, freed.freedAt);
  }

  stats(kind: IdKind): { capacity: number; inUse: number; quarantined: number } {
    const p = this.tables[kind].pool;
    return { capacity: p.max, inUse: p.usedCount, quarantined: p.quarantinedCount };
  }
}
