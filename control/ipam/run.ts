// One allocation run: the addresses in use, restoring what Services hold and
// allocating what they lack. allocate() drives it in the documented order.
import { compareStrings } from '../model/guards.js';
import type { Family } from '../model/types.js';
import { fromBigInt } from '../resources/addresses.js';

import { refusal, unavailability, type PoolEntry, type PoolTable } from './pools.js';
import type { AllocationReason, PendingReason, ReleaseReason } from './reasons.js';
import { familyName, type Address } from './requests.js';
import { canShare } from './sharing.js';
import { release, type Holder, type Holding, type Kept, type ServiceState } from './state.js';

type Candidate =
  | { ok: true; family: Family; address: Address; pool: PoolEntry; holding?: Holding }
  | { ok: false; family: Family; reason: PendingReason; message: string };

/** Reasons that are about what the Service asked for, not about pool capacity. */
const REQUEST_REASONS: ReadonlySet<AllocationReason> = new Set([
  'poolNotFound',
  'poolUnavailable',
  'requestedIPNotInPool',
  'requestedIPInUse',
  'sharingConflict',
]);

const MAX_LISTED = 5;

function listed(items: string[]): string {
  const shown = items.slice(0, MAX_LISTED).join('; ');
  return items.length > MAX_LISTED ? `${shown}; and ${items.length - MAX_LISTED} more` : shown;
}

const holderKey = (h: Holder): string => (h.kind === 'ours' ? h.state.req.key : h.key);

export class AllocationRun {
  private readonly holdings = new Map<string, Holding>();
  /** Sharing key -> addresses held under it, for automatic co-location. */
  private readonly byKey = new Map<string, Set<string>>();

  constructor(private readonly pools: PoolTable) {}

  /** Step 1: another implementation's address blocks ours, whatever it is. */
  reserveForeign(key: string, held: readonly Address[]): void {
    for (const a of held) {
      const pool = this.pools.locate(a.family, a.value);
      if (pool === undefined || !pool.spaces[a.family]?.contains(a.value)) continue;
      this.hold(a, pool, { kind: 'foreign', key });
    }
  }

  /** Step 2: keep each held address that is still valid; release the others. */
  restore(st: ServiceState): void {
    const { req } = st;
    for (const a of req.held) {
      const verdict = this.restoreVerdict(st, a);
      if ('reason' in verdict) {
        release(st, a, verdict.reason, verdict.message);
        continue;
      }
      const holding = this.hold(a, verdict.pool, { kind: 'ours', state: st });
      st.kept.set(a.family, {
        address: a,
        pool: verdict.pool,
        isNew: false,
        sharedWith: holding.holders
          .map(holderKey)
          .filter((k) => k !== req.key)
          .sort(compareStrings),
      });
    }
  }

  /** After restoring, the free-space structures are built in one pass each. */
  loadSpaces(): void {
    const perSpace = new Map<PoolEntry, Record<Family, bigint[]>>();
    for (const h of this.holdings.values()) {
      let lists = perSpace.get(h.pool);
      if (lists === undefined) perSpace.set(h.pool, (lists = { 4: [], 6: [] }));
      lists[h.address.family].push(h.address.value);
    }
    for (const [pool, lists] of perSpace)
      for (const family of [4, 6] as const) pool.spaces[family]?.takeAll(lists[family]);
  }

  /** Steps 3 and 4: what a Service still lacks, by request or automatically. */
  allocate(st: ServiceState): void {
    const { req } = st;
    const missing = req.families.filter((f) => !st.kept.has(f));
    if (missing.length === 0) return;
    const candidates: Candidate[] = [];
    for (const family of missing) {
      if (req.ips.size > 0) {
        const wanted = req.ips.get(family);
        // A request names exactly the addresses wanted: a PreferDualStack
        // Service that names one family's address gets no other.
        if (wanted !== undefined) candidates.push(this.requested(st, wanted));
      } else candidates.push(this.automatic(st, family));
    }
    this.settle(st, candidates);
  }

  private settle(st: ServiceState, candidates: Candidate[]): void {
    const { req } = st;
    const failures = candidates.filter((c) => !c.ok);
    const first = failures[0];
    if (req.policy === 'RequireDualStack' && first !== undefined) {
      // All or nothing: a dual-stack Service half served is not what it asked for.
      const bothFailed = failures.length === req.families.length;
      const reason: PendingReason =
        REQUEST_REASONS.has(first.reason) || bothFailed ? first.reason : 'dualStackUnavailable';
      const message =
        reason === 'dualStackUnavailable'
          ? `RequireDualStack, but no ${familyName(first.family)} address: ${first.message}`
          : first.message;
      for (const kept of [...st.kept.values()]) {
        this.drop(st, kept);
        release(
          st,
          kept.address,
          'dualStackUnavailable',
          `RequireDualStack, and no ${familyName(first.family)} address can be had`,
        );
      }
      st.failure = { reason, message };
      return;
    }
    for (const c of candidates) if (c.ok) this.commit(st, c);
    if (first === undefined) return;
    if (st.kept.size === 0) st.failure = { reason: first.reason, message: first.message };
    else
      for (const f of failures) st.notes.push(`no ${familyName(f.family)} address: ${f.message}`);
  }

  private restoreVerdict(
    st: ServiceState,
    a: Address,
  ): { pool: PoolEntry } | { reason: ReleaseReason; message: string } {
    const { req } = st;
    const fam = familyName(a.family);
    // An invalid request may have garbled its families too: it releases nothing for that.
    if (req.problems.length === 0 && !req.families.includes(a.family))
      return {
        reason: 'familyNotRequested',
        message: `the Service's IP families are now ${req.families.map(familyName).join(', ')}`,
      };
    if (st.kept.has(a.family))
      return {
        reason: 'familyNotRequested',
        message: `a second ${fam} address; a Service holds one per family`,
      };
    const pool = this.pools.locate(a.family, a.value);
    if (pool === undefined) {
      const rejected = this.pools.locateRejected(a.family, a.value);
      return rejected !== undefined
        ? { reason: 'poolRejected', message: unavailability(rejected) }
        : { reason: 'notInPool', message: 'no IPPool holds it any more' };
    }
    if (pool.state === 'disabled') return { reason: 'poolDisabled', message: unavailability(pool) };
    if (!pool.spaces[a.family]?.contains(a.value))
      return {
        reason: 'notInPool',
        message: `IPPool '${pool.name}' avoids .0 and .255 addresses (avoidBuggyIPs)`,
      };
    const refused = refusal(pool, req.labels, req.namespace, st.namespaceLabels);
    if (refused !== undefined)
      return {
        reason: 'notAdmitted',
        message: `IPPool '${pool.name}' no longer takes this Service: ${refused}`,
      };
    // An invalid request cannot say what it wants, so it does not release.
    if (req.problems.length === 0) {
      if (req.ips.size > 0 && req.ips.get(a.family)?.value !== a.value) {
        const wanted = req.ips.get(a.family);
        return {
          reason: 'requestChanged',
          message:
            wanted !== undefined
              ? `${req.ipsSource} asks for ${wanted.address}`
              : `${req.ipsSource} names no ${fam} address`,
        };
      }
      if (req.pool !== undefined && req.pool !== pool.name)
        return {
          reason: 'requestChanged',
          message: `${req.poolSource} asks for IPPool '${req.pool}', not '${pool.name}'`,
        };
    }
    const holding = this.holdings.get(a.address);
    const other = holding !== undefined ? this.conflict(st, holding) : undefined;
    if (other !== undefined)
      return {
        reason: 'sharingConflict',
        message: `${other.holder} holds it too and keeps it: ${other.why}`,
      };
    return { pool };
  }

  /** The first holder `st` may not share `holding` with, and why. */
  private conflict(
    st: ServiceState,
    holding: Holding,
  ): { holder: string; reason: 'requestedIPInUse' | 'sharingConflict'; why: string } | undefined {
    for (const h of holding.holders) {
      if (h.kind === 'foreign')
        return {
          holder: h.key,
          reason: 'requestedIPInUse',
          why: `${h.key} is not served by xlb (another loadBalancerClass)`,
        };
      const v = canShare(st.req, h.state.req);
      if (!v.ok) return { holder: h.state.req.key, reason: v.reason, why: v.why };
    }
    return undefined;
  }

  private requested(st: ServiceState, a: Address): Candidate {
    const { req } = st;
    const fail = (reason: PendingReason, message: string): Candidate => ({
      ok: false,
      family: a.family,
      reason,
      message: `${req.ipsSource} asks for ${a.address}: ${message}`,
    });
    const pool = this.pools.locate(a.family, a.value);
    if (pool === undefined) {
      const rejected = this.pools.locateRejected(a.family, a.value);
      return rejected !== undefined
        ? fail('poolUnavailable', unavailability(rejected))
        : fail('requestedIPNotInPool', 'no IPPool holds it');
    }
    if (req.pool !== undefined && req.pool !== pool.name)
      return fail(
        'requestedIPNotInPool',
        `it is in IPPool '${pool.name}', but ${req.poolSource} asks for '${req.pool}'`,
      );
    if (pool.state !== 'serving') return fail('poolUnavailable', unavailability(pool));
    if (!pool.spaces[a.family]?.contains(a.value))
      return fail(
        'requestedIPNotInPool',
        `IPPool '${pool.name}' avoids .0 and .255 addresses (avoidBuggyIPs)`,
      );
    const refused = refusal(pool, req.labels, req.namespace, st.namespaceLabels);
    if (refused !== undefined)
      return fail(
        'poolUnavailable',
        `IPPool '${pool.name}' does not take this Service: ${refused}`,
      );
    const holding = this.holdings.get(a.address);
    if (holding !== undefined) {
      const other = this.conflict(st, holding);
      if (other !== undefined) return fail(other.reason, `${other.holder} holds it: ${other.why}`);
      return { ok: true, family: a.family, address: a, pool, holding };
    }
    return { ok: true, family: a.family, address: a, pool };
  }

  private automatic(st: ServiceState, family: Family): Candidate {
    const { req } = st;
    const fam = familyName(family);
    const fail = (reason: PendingReason, message: string): Candidate => ({
      ok: false,
      family,
      reason,
      message,
    });
    let pools: PoolEntry[];
    if (req.pool !== undefined) {
      const pool = this.pools.byName(req.pool);
      const asked = `${req.poolSource} asks for IPPool '${req.pool}'`;
      if (pool === undefined) return fail('poolNotFound', `${asked}, which does not exist`);
      if (pool.state !== 'serving')
        return fail('poolUnavailable', `${asked}: ${unavailability(pool)}`);
      const refused = refusal(pool, req.labels, req.namespace, st.namespaceLabels);
      if (refused !== undefined)
        return fail('poolUnavailable', `${asked}, which does not take this Service: ${refused}`);
      if (pool.spaces[family] === undefined)
        return fail('noPoolForService', `${asked}, which has no ${fam} addresses`);
      pools = [pool];
    } else {
      pools = this.pools.autoOrder.filter(
        (p) =>
          p.spaces[family] !== undefined &&
          refusal(p, req.labels, req.namespace, st.namespaceLabels) === undefined,
      );
      if (pools.length === 0) return fail('noPoolForService', this.whyNoPool(st, family));
    }
    const shared = this.sharedCandidate(st, family, pools);
    if (shared !== undefined) return shared;
    for (const pool of pools) {
      const value = pool.spaces[family]!.lowestFree();
      if (value !== undefined) return { ok: true, family, address: addressOf(family, value), pool };
    }
    const usage = pools.map((p) => {
      const s = p.spaces[family]!;
      return `'${p.name}' (${s.used} of ${s.size} in use)`;
    });
    return fail(
      'poolExhausted',
      `no free ${fam} address in the IPPools that take this Service: ${listed(usage)}`,
    );
  }

  /**
   * With a sharing key and no address asked for, MetalLB puts Services that
   * may share on one address; so does xlb: the lowest compatible address in
   * the first pool that has one.
   */
  private sharedCandidate(
    st: ServiceState,
    family: Family,
    pools: readonly PoolEntry[],
  ): Candidate | undefined {
    const key = st.req.sharingKey;
    if (key === undefined) return undefined;
    let best: { rank: number; holding: Holding } | undefined;
    for (const text of this.byKey.get(key) ?? []) {
      const holding = this.holdings.get(text)!;
      if (holding.address.family !== family) continue;
      const rank = pools.indexOf(holding.pool);
      if (rank < 0 || this.conflict(st, holding) !== undefined) continue;
      if (
        best === undefined ||
        rank < best.rank ||
        (rank === best.rank && holding.address.value < best.holding.address.value)
      )
        best = { rank, holding };
    }
    if (best === undefined) return undefined;
    const { holding } = best;
    return { ok: true, family, address: holding.address, pool: holding.pool, holding };
  }

  private whyNoPool(st: ServiceState, family: Family): string {
    const { req } = st;
    const fam = familyName(family);
    const why: string[] = [];
    for (const p of this.pools.entries) {
      if (!p.blocks.some((b) => b.family === family)) continue;
      if (p.state !== 'serving') why.push(unavailability(p));
      else if (!p.autoAssign)
        why.push(`IPPool '${p.name}' has autoAssign: false (name it or one of its addresses)`);
      else {
        const refused = refusal(p, req.labels, req.namespace, st.namespaceLabels);
        if (refused !== undefined) why.push(`IPPool '${p.name}': ${refused}`);
      }
    }
    return why.length === 0
      ? `no IPPool has ${fam} addresses`
      : `no IPPool hands out ${fam} addresses to this Service: ${listed(why)}`;
  }

  private commit(st: ServiceState, c: Extract<Candidate, { ok: true }>): void {
    const holding = c.holding ?? this.hold(c.address, c.pool, undefined);
    const sharedWith = holding.holders.map(holderKey).sort(compareStrings);
    if (c.holding === undefined) c.pool.spaces[c.family]!.take(c.address.value);
    holding.holders.push({ kind: 'ours', state: st });
    this.index(holding, st.req.sharingKey);
    st.kept.set(c.family, { address: c.address, pool: c.pool, isNew: true, sharedWith });
    const sharing =
      sharedWith.length > 0
        ? `, shared with ${sharedWith.join(', ')} (sharing key '${st.req.sharingKey}')`
        : '';
    st.events.push({
      service: st.req.key,
      type: 'Normal',
      reason: 'IPAllocated',
      detail: 'allocated',
      address: c.address.address,
      message: `Assigned IP ${c.address.address} from IPPool '${c.pool.name}'${sharing}`,
    });
  }

  /** Gives up a kept address (RequireDualStack that cannot be completed). */
  private drop(st: ServiceState, kept: Kept): void {
    st.kept.delete(kept.address.family);
    const holding = this.holdings.get(kept.address.address);
    if (holding === undefined) return;
    holding.holders = holding.holders.filter((h) => h.kind !== 'ours' || h.state !== st);
    if (holding.holders.length > 0) return;
    this.holdings.delete(kept.address.address);
    kept.pool.spaces[kept.address.family]?.release(kept.address.value);
    for (const set of this.byKey.values()) set.delete(kept.address.address);
  }

  /** Records `holder` on the address (a new Holding when it has none yet). */
  private hold(a: Address, pool: PoolEntry, holder: Holder | undefined): Holding {
    let holding = this.holdings.get(a.address);
    if (holding === undefined) {
      holding = { address: a, pool, holders: [] };
      this.holdings.set(a.address, holding);
    }
    if (holder !== undefined) {
      holding.holders.push(holder);
      if (holder.kind === 'ours') this.index(holding, holder.state.req.sharingKey);
    }
    return holding;
  }

  private index(holding: Holding, key: string | undefined): void {
    if (key === undefined) return;
    let set = this.byKey.get(key);
    if (set === undefined) this.byKey.set(key, (set = new Set()));
    set.add(holding.address.address);
  }
}

function addressOf(family: Family, value: bigint): Address {
  return { family, value, address: fromBigInt(value, family).toString() };
}
