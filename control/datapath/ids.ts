// Ids of units (index of xlb_maglev, xlb_service_stats and the source ranges)
// and of backends (index of xlb_backends), persisted in a pinned map the
// control plane owns, so a restarted agent gives every unit and backend the
// id it had and every Maglev table comes out identical.
//
// A freed id waits in quarantine before anyone else gets it: the connection
// table may still name it, and a flow pinned to a freed backend must be
// balanced afresh, never steered to a different pod that inherited the id.
import { createHash } from 'node:crypto';

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
const kindCode: Record<IdKind | 'meta', number> = { meta: 0, unit: 1, backend: 2 };

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
 * round-robin, so a freed id comes back as late as possible. Pure.
 */
export class IdPool {
  private readonly used = new Set<number>();
  private readonly held = new Map<number, number>();
  /** The next id to try. */
  private cursor = 1;

  /** Valid ids are 1..max (0 means "none" to the datapath). */
  constructor(
    readonly max: number,
    readonly quarantineMs = QUARANTINE_MS,
  ) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`an id pool needs max >= 1, not ${max}`);
  }

  valid(id: number): boolean {
    return Number.isInteger(id) && id >= 1 && id <= this.max;
  }

  known(id: number): boolean {
    return this.used.has(id) || this.held.has(id);
  }

  inUse(id: number): boolean {
    return this.used.has(id);
  }

  get usedCount(): number {
    return this.used.size;
  }

  get quarantinedCount(): number {
    return this.held.size;
  }

  /** Marks an id taken (restored from the map, or its owner came back from quarantine). */
  take(id: number): void {
    this.held.delete(id);
    this.used.add(id);
  }

  /** Restores an id that was freed at `freedAt`. */
  hold(id: number, freedAt: number): void {
    this.used.delete(id);
    this.held.set(id, freedAt);
  }

  /** Frees a taken id into quarantine. */
  free(id: number, now: number): void {
    if (this.used.delete(id)) this.held.set(id, now);
  }

  /** Forgets an id altogether (an allocation that could not be recorded). */
  forget(id: number): void {
    this.used.delete(id);
    this.held.delete(id);
  }

  /** Round-robin resumes after this id. */
  resumeAfter(id: number): void {
    this.cursor = (id % this.max) + 1;
  }

  /** Quarantined ids whose time is up, without freeing them. */
  due(now: number): number[] {
    const out: number[] = [];
    for (const [id, freedAt] of this.held) if (now - freedAt >= this.quarantineMs) out.push(id);
    return out;
  }

  /** Quarantined ids whose time is up; they become free. */
  expire(now: number): number[] {
    const out: number[] = [];
    for (const [id, freedAt] of this.held) {
      if (now - freedAt >= this.quarantineMs) out.push(id);
    }
    for (const id of out) this.held.delete(id);
    return out;
  }

  /** A free id, now taken, or undefined when every id is taken or held. */
  allocate(): number | undefined {
    for (let i = 0; i < this.max; i++) {
      const id = ((this.cursor - 1 + i) % this.max) + 1;
      if (this.used.has(id) || this.held.has(id)) continue;
      this.used.add(id);
      this.resumeAfter(id);
      return id;
    }
    return undefined;
  }
}

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

function recordKey(kind: IdKind | 'meta', owner: string): Buffer {
  const key = Buffer.alloc(KEY_SIZE);
  createHash('sha256').update(`${kind}\0${owner}`).digest().copy(key, 0, 0, 16);
  key.writeUInt32LE(kindCode[kind], 16);
  return key;
}

function encodeRecord(r: IdRecord): Buffer {
  const v = Buffer.alloc(VALUE_SIZE);
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

/** One kind's records, pool and this pass's claims. */
class KindTable {
  readonly pool: IdPool;
  /** Record key (hex) -> record, in use or quarantined. */
  readonly records = new Map<string, IdRecord>();
  /** id -> record key, for ids in use. */
  readonly owners = new Map<number, string>();
  readonly claimed = new Set<string>();

  constructor(max: number, quarantineMs: number) {
    this.pool = new IdPool(max, quarantineMs);
  }
}

/**
 * Ids for units and backends, persisted in `store`. Each reconcile pass
 * begins with beginPass(); owners claim their ids during the pass; what no
 * owner claimed is what the reconciler removes and then releases.
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
      const ref = key.toString('hex');
      t.records.set(ref, r);
      if (r.freedAt === 0) {
        t.pool.take(r.id);
        t.owners.set(r.id, ref);
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
    const now = this.now();
    for (const t of Object.values(this.tables)) t.claimed.clear();
    const due = {
      unit: this.tables.unit.pool.due(now),
      backend: this.tables.backend.pool.due(now),
    };
    if (due.unit.length + due.backend.length === 0) return;
    beforeReuse?.(due);
    for (const t of Object.values(this.tables)) {
      for (const id of t.pool.expire(now)) {
        for (const [ref, r] of t.records) {
          if (r.id === id && r.freedAt !== 0) {
            t.records.delete(ref);
            this.store.delete(Buffer.from(ref, 'hex'));
          }
        }
      }
    }
  }

  /**
   * The owner's id, allocating one if it has none; throws IdsExhaustedError.
   * `parent`: a backend's unit id.
   */
  claim(kind: IdKind, owner: string, parent = 0): Claim {
    const t = this.tables[kind];
    const key = recordKey(kind, owner);
    const ref = key.toString('hex');
    const r = t.records.get(ref);
    if (r !== undefined && r.freedAt === 0) {
      if (r.parent !== parent) {
        const moved = { ...r, parent };
        this.store.update(key, encodeRecord(moved));
        t.records.set(ref, moved);
      }
      t.claimed.add(ref);
      return { id: r.id, fresh: false };
    }
    if (r !== undefined) {
      // The owner came back while its id waited in quarantine: the id still
      // means this very backend (or unit), so it gets it back.
      const back = { ...r, parent, freedAt: 0 };
      this.store.update(key, encodeRecord(back));
      t.records.set(ref, back);
      t.pool.take(r.id);
      t.owners.set(r.id, ref);
      t.claimed.add(ref);
      return { id: r.id, fresh: false };
    }
    const id = t.pool.allocate();
    if (id === undefined) {
      throw new IdsExhaustedError(kind, owner, t.pool.max, t.pool.quarantinedCount);
    }
    const record = { id, parent, allocatedAt: this.now(), freedAt: 0 };
    try {
      this.store.update(key, encodeRecord(record));
    } catch (e) {
      t.pool.forget(id);
      throw e;
    }
    t.records.set(ref, record);
    t.owners.set(id, ref);
    t.claimed.add(ref);
    return { id, fresh: true };
  }

  /** The owner's id if it holds one, without claiming or allocating. */
  peek(kind: IdKind, owner: string): number | undefined {
    const r = this.tables[kind].records.get(recordKey(kind, owner).toString('hex'));
    return r !== undefined && r.freedAt === 0 ? r.id : undefined;
  }

  /** The unit id a backend id was claimed under (0: unknown). */
  parentOf(kind: IdKind, id: number): number {
    const t = this.tables[kind];
    const ref = t.owners.get(id);
    return ref === undefined ? 0 : (t.records.get(ref)?.parent ?? 0);
  }

  /** True when the id is taken (by an owner, claimed or not) or in quarantine. */
  known(kind: IdKind, id: number): boolean {
    return this.tables[kind].pool.known(id);
  }

  /**
   * Records an id found in the datapath's maps that no owner holds, so it is
   * neither handed out while in use nor reused at once after its removal.
   */
  adoptOrphan(kind: IdKind, id: number): void {
    const t = this.tables[kind];
    if (!t.pool.valid(id) || t.pool.known(id)) return;
    const key = recordKey(kind, orphanOwner(id));
    const record = { id, parent: 0, allocatedAt: 0, freedAt: 0 };
    this.store.update(key, encodeRecord(record));
    const ref = key.toString('hex');
    t.records.set(ref, record);
    t.pool.take(id);
    t.owners.set(id, ref);
  }

  /** Ids in use that no owner claimed in this pass. */
  unclaimed(kind: IdKind): number[] {
    const t = this.tables[kind];
    const out: number[] = [];
    for (const [id, ref] of t.owners) if (!t.claimed.has(ref)) out.push(id);
    return out.sort((a, b) => a - b);
  }

  /** Moves an unclaimed id to quarantine. */
  release(kind: IdKind, id: number): void {
    const t = this.tables[kind];
    const ref = t.owners.get(id);
    if (ref === undefined || t.claimed.has(ref)) return;
    const r = t.records.get(ref)!;
    const freed = { ...r, freedAt: Math.max(1, this.now()) };
    this.store.update(Buffer.from(ref, 'hex'), encodeRecord(freed));
    t.records.set(ref, freed);
    t.owners.delete(id);
    t.pool.free(id, freed.freedAt);
  }

  stats(kind: IdKind): { capacity: number; inUse: number; quarantined: number } {
    const p = this.tables[kind].pool;
    return { capacity: p.max, inUse: p.usedCount, quarantined: p.quarantinedCount };
  }
}
