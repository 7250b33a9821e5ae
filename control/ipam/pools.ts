// IPPool objects -> the pools the allocator can use. Validation happens here
// (an invalid pool is reported, never thrown), and so does overlap rejection:
// when pools share an address, the pool that was there first keeps serving and
// the later one (creation time, then name) is rejected whole. Rejecting only
// the newcomer means adding a pool can never take addresses away from
// Services that already hold them; rejecting both would.
import { compareStrings } from '../model/guards.js';
import type { Family } from '../model/types.js';
import { fieldIssues, nameOf } from '../resources/errors.js';
import { ipPoolSchema, parseAddressBlock } from '../resources/ip-pool.js';
import { isRestrictive, matchesSelector, type LabelSelector } from '../resources/label-selector.js';

import { AddressSpace } from './address-space.js';
import { byAge, creationTime } from './order.js';
import type { PoolState } from './types.js';

export interface PoolBlock {
  /** As written in spec.addresses. */
  text: string;
  family: Family;
  first: bigint;
  last: bigint;
}

export interface PoolEntry {
  name: string;
  /** For byAge. */
  key: string;
  created: number;
  state: PoolState;
  autoAssign: boolean;
  serviceSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  /** Selects some Services or namespaces: preferred over open pools for those. */
  dedicated: boolean;
  blocks: PoolBlock[];
  /** Per family with blocks; built for every pool whose blocks could be read. */
  spaces: Partial<Record<Family, AddressSpace>>;
  /** Why the pool is not serving (overlap or validation), for messages. */
  problem?: string;
}

interface IndexedBlock {
  first: bigint;
  last: bigint;
  pool: PoolEntry;
}

/** The pools, with lookups by name and by address. */
export class PoolTable {
  /** Every pool, by name. */
  readonly entries: readonly PoolEntry[];
  /** Serving pools in the order automatic allocation tries them. */
  readonly autoOrder: readonly PoolEntry[];
  private readonly named = new Map<string, PoolEntry>();
  /** Blocks of serving and disabled pools (which never overlap), sorted, per family. */
  private readonly index: Record<Family, IndexedBlock[]> = { 4: [], 6: [] };

  constructor(entries: PoolEntry[]) {
    this.entries = [...entries].sort((a, b) => compareStrings(a.name, b.name));
    for (const e of this.entries) this.named.set(e.name, e);
    for (const e of this.entries) {
      if (e.state !== 'serving' && e.state !== 'disabled') continue;
      for (const b of e.blocks)
        this.index[b.family].push({ first: b.first, last: b.last, pool: e });
    }
    for (const family of [4, 6] as const)
      this.index[family].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
    // Dedicated pools first: a pool that names a team's Services is meant for
    // them, the open pool for everyone else. Then by name, so users can steer.
    this.autoOrder = this.entries
      .filter((e) => e.state === 'serving' && e.autoAssign)
      .sort((a, b) => (a.dedicated !== b.dedicated ? (a.dedicated ? -1 : 1) : 0));
  }

  byName(name: string): PoolEntry | undefined {
    return this.named.get(name);
  }

  /** The serving or disabled pool whose blocks hold `a`. */
  locate(family: Family, a: bigint): PoolEntry | undefined {
    const blocks = this.index[family];
    let lo = 0;
    let hi = blocks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const b = blocks[mid]!;
      if (a < b.first) hi = mid - 1;
      else if (a > b.last) lo = mid + 1;
      else return b.pool;
    }
    return undefined;
  }

  /** A rejected (overlapping or invalid) pool whose blocks hold `a`, to explain a refusal. */
  locateRejected(family: Family, a: bigint): PoolEntry | undefined {
    return this.entries.find(
      (e) =>
        (e.state === 'overlap' || e.state === 'invalid') &&
        e.blocks.some((b) => b.family === family && b.first <= a && a <= b.last),
    );
  }
}

/** Why `pool` does not take a Service with these labels in this namespace; undefined if it does. */
export function refusal(
  pool: PoolEntry,
  serviceLabels: Readonly<Record<string, string>>,
  namespace: string,
  namespaceLabels: Readonly<Record<string, string>>,
): string | undefined {
  if (!matchesSelector(pool.serviceSelector, serviceLabels))
    return `its serviceSelector does not select this Service`;
  if (!matchesSelector(pool.namespaceSelector, namespaceLabels))
    return `its namespaceSelector does not select namespace ${namespace}`;
  return undefined;
}

/** Says what keeps a non-serving pool from handing out addresses. */
export function unavailability(pool: PoolEntry): string {
  switch (pool.state) {
    case 'disabled':
      return `IPPool '${pool.name}' is disabled`;
    case 'overlap':
    case 'invalid':
      return `IPPool '${pool.name}' is rejected: ${pool.problem ?? pool.state}`;
    case 'serving':
      return `IPPool '${pool.name}' is serving`;
  }
}

function blocksOf(texts: readonly string[]): PoolBlock[] {
  const blocks: PoolBlock[] = [];
  for (const text of texts) {
    try {
      blocks.push({ text, ...parseAddressBlock(text) });
    } catch {
      // An invalid pool's unreadable entries: its Invalid condition says why.
    }
  }
  return blocks;
}

function spacesOf(blocks: readonly PoolBlock[], avoidBuggyIPs: boolean): PoolEntry['spaces'] {
  const spaces: PoolEntry['spaces'] = {};
  for (const family of [4, 6] as const) {
    const mine = blocks.filter((b) => b.family === family);
    if (mine.length > 0) spaces[family] = new AddressSpace(family, mine, avoidBuggyIPs);
  }
  return spaces;
}

function readPool(obj: unknown): PoolEntry | undefined {
  const name = nameOf(obj);
  if (name === undefined || name === '') return undefined;
  const created = creationTime((obj as { metadata?: unknown }).metadata);
  const r = ipPoolSchema.safeParse(obj);
  if (!r.success) {
    const spec = (obj as { spec?: { addresses?: unknown } }).spec;
    const texts = Array.isArray(spec?.addresses)
      ? spec.addresses.filter((t): t is string => typeof t === 'string')
      : [];
    const blocks = blocksOf(texts);
    return {
      name,
      key: name,
      created,
      state: 'invalid',
      autoAssign: false,
      dedicated: false,
      blocks,
      spaces: {},
      problem: fieldIssues(r.error)
        .map((i) => (i.path === '' ? i.message : `${i.path}: ${i.message}`))
        .join('; '),
    };
  }
  const spec = r.data.spec;
  const blocks = blocksOf(spec.addresses);
  return {
    name,
    key: name,
    created,
    state: spec.disabled ? 'disabled' : 'serving',
    autoAssign: spec.autoAssign,
    ...(spec.serviceSelector !== undefined ? { serviceSelector: spec.serviceSelector } : {}),
    ...(spec.namespaceSelector !== undefined ? { namespaceSelector: spec.namespaceSelector } : {}),
    dedicated: isRestrictive(spec.serviceSelector) || isRestrictive(spec.namespaceSelector),
    blocks,
    spaces: spacesOf(blocks, spec.avoidBuggyIPs),
  };
}

function overlapOf(a: PoolEntry, b: PoolEntry): [PoolBlock, PoolBlock] | undefined {
  for (const x of a.blocks)
    for (const y of b.blocks)
      if (x.family === y.family && x.first <= y.last && y.first <= x.last) return [x, y];
  return undefined;
}

/**
 * Reads every pool and rejects the later of any two that overlap. A pool is
 * judged against every earlier valid pool, serving, disabled or itself
 * rejected, so its verdict depends only on what came before it: deleting or
 * disabling an unrelated pool never flips another pool's verdict.
 */
export function buildPoolTable(objects: readonly unknown[]): PoolTable {
  const read = objects
    .map(readPool)
    .filter((e): e is PoolEntry => e !== undefined)
    .sort(byAge);
  // One pool per name: a caller passing the same pool twice keeps the older.
  const entries: PoolEntry[] = [];
  const seen = new Set<string>();
  for (const e of read) {
    if (seen.has(e.name)) continue;
    seen.add(e.name);
    entries.push(e);
  }
  const earlier: PoolEntry[] = [];
  for (const e of entries) {
    if (e.state === 'invalid') continue;
    for (const prior of earlier) {
      const hit = overlapOf(e, prior);
      if (hit === undefined) continue;
      const why =
        prior.created < e.created
          ? 'created earlier'
          : 'created at the same time, and its name sorts first';
      e.state = 'overlap';
      e.problem =
        `'${hit[0].text}' overlaps '${hit[1].text}' of IPPool '${prior.name}', which takes ` +
        `precedence (${why}); this pool hands out no address until the overlap is removed`;
      break;
    }
    earlier.push(e);
  }
  return new PoolTable(entries);
}
