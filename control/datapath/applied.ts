// What the datapath's maps hold, as the reconciler compares it with the
// desired state: read once from the maps when an agent starts (or adopts a
// running datapath) and then kept in step with every successful write.
//
// Compact: a Maglev table is remembered as the digest of what it was built
// from and the ids it names, never slot by slot (10,000 tables of 16,381
// slots would take gigabytes). The counts the reconciler asks about every
// pass (frontends per VIP and per service, tables per backend id) are kept
// as entries come and go, so asking costs nothing.
import { vipFilterBit } from './flowcache.js';
import type { BackendEntry, DatapathMaps, Frontend, ServiceEntry } from './maps.js';
import { contentDigest, frontendKey, readTrailer } from './plan.js';

export interface AppliedFrontend {
  frontend: Frontend;
  service: ServiceEntry;
}

export interface AppliedTable {
  /**
   * Digest of what the table was built from (see tableDigest); for a table
   * installed without that record (by hand, or an older agent), of its slots.
   */
  digest: string;
  /** The distinct backend ids its slots name, ascending. */
  ids: readonly number[];
}

function increment<K>(m: Map<K, number>, k: K, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
}

export class AppliedState {
  /** VIP -> the frontend count stored with it. */
  private readonly vipMap = new Map<string, number>();
  /** VIP filter bit -> VIPs in the map that set it. */
  private readonly vipBits = new Map<number, number>();
  private readonly frontendMap = new Map<string, AppliedFrontend>();
  private readonly byVip = new Map<string, number>();
  private readonly byService = new Map<number, number>();
  /** Service id -> its Maglev table. */
  private readonly tableMap = new Map<number, AppliedTable>();
  /** Backend id -> how many installed tables name it (ids are small integers: an array). */
  private tableRefs = new Uint16Array(1024);
  /** Service id -> canonical CIDRs. */
  private readonly rangeMap = new Map<number, Set<string>>();
  /** Backend id -> what its slot holds (an array by id: 100,000 entries cost a Map three times as much). */
  private readonly backendSlots: Array<BackendEntry | undefined> = [];
  private backendCount = 0;
  private active = 0;

  static read(maps: DatapathMaps): AppliedState {
    const s = new AppliedState();
    for (const v of maps.vipEntries()) s.setVip(v.vip, v.frontends);
    for (const f of maps.frontendEntries()) s.setFrontend(frontendKey(f.frontend), f);
    for (const id of maps.maglevServiceIds()) {
      const table = readTable(maps, id);
      if (table !== undefined) s.setTable(id, table);
    }
    for (const r of maps.sourceRangeEntries()) s.addRange(r.serviceId, r.cidr);
    for (const b of maps.backendEntries()) s.setBackend(b.id, b.backend);
    return s;
  }

  get vips(): ReadonlyMap<string, number> {
    return this.vipMap;
  }

  setVip(vip: string, frontends: number): void {
    if (!this.vipMap.has(vip)) increment(this.vipBits, vipFilterBit(vip), 1);
    this.vipMap.set(vip, frontends);
  }

  deleteVip(vip: string): void {
    if (this.vipMap.delete(vip)) increment(this.vipBits, vipFilterBit(vip), -1);
  }

  /** Another VIP in the map sets this VIP's filter bit. */
  sharesFilterBit(vip: string): boolean {
    return (this.vipBits.get(vipFilterBit(vip)) ?? 0) > (this.vipMap.has(vip) ? 1 : 0);
  }

  get frontends(): ReadonlyMap<string, AppliedFrontend> {
    return this.frontendMap;
  }

  setFrontend(key: string, f: AppliedFrontend): void {
    this.deleteFrontend(key);
    this.frontendMap.set(key, f);
    increment(this.byVip, f.frontend.vip, 1);
    increment(this.byService, f.service.id, 1);
  }

  deleteFrontend(key: string): void {
    const old = this.frontendMap.get(key);
    if (old === undefined) return;
    this.frontendMap.delete(key);
    increment(this.byVip, old.frontend.vip, -1);
    increment(this.byService, old.service.id, -1);
  }

  /** Frontends in the map on this VIP. */
  frontendsOn(vip: string): number {
    return this.byVip.get(vip) ?? 0;
  }

  /** Frontends in the map that lead to this service id. */
  frontendsOf(serviceId: number): number {
    return this.byService.get(serviceId) ?? 0;
  }

  get tables(): ReadonlyMap<number, AppliedTable> {
    return this.tableMap;
  }

  setTable(serviceId: number, table: AppliedTable): void {
    this.deleteTable(serviceId);
    this.tableMap.set(serviceId, table);
    for (const id of table.ids) {
      if (id >= this.tableRefs.length) {
        const grown = new Uint16Array(Math.max(id + 1, 2 * this.tableRefs.length));
        grown.set(this.tableRefs);
        this.tableRefs = grown;
      }
      this.tableRefs[id]!++;
    }
  }

  deleteTable(serviceId: number): void {
    const old = this.tableMap.get(serviceId);
    if (old === undefined) return;
    this.tableMap.delete(serviceId);
    for (const id of old.ids) this.tableRefs[id]!--;
  }

  /** Some installed table names this backend id. */
  named(backendId: number): boolean {
    return (this.tableRefs[backendId] ?? 0) > 0;
  }

  /** Backend ids some installed table names. */
  tableBackends(): Set<number> {
    const out = new Set<number>();
    for (const t of this.tableMap.values()) for (const id of t.ids) out.add(id);
    return out;
  }

  get ranges(): ReadonlyMap<number, ReadonlySet<string>> {
    return this.rangeMap;
  }

  addRange(serviceId: number, cidr: string): void {
    const set = this.rangeMap.get(serviceId) ?? new Set<string>();
    set.add(cidr);
    this.rangeMap.set(serviceId, set);
  }

  deleteRange(serviceId: number, cidr: string): void {
    const set = this.rangeMap.get(serviceId);
    set?.delete(cidr);
    if (set?.size === 0) this.rangeMap.delete(serviceId);
  }

  backend(id: number): BackendEntry | undefined {
    return this.backendSlots[id];
  }

  hasBackend(id: number): boolean {
    return this.backendSlots[id] !== undefined;
  }

  *backendIds(): Generator<number> {
    for (let id = 0; id < this.backendSlots.length; id++)
      if (this.backendSlots[id] !== undefined) yield id;
  }

  setBackend(id: number, b: BackendEntry): void {
    this.deleteBackend(id);
    // Filled up to `id` first, so the array stays packed (holes would make it a dictionary).
    while (this.backendSlots.length < id) this.backendSlots.push(undefined);
    this.backendSlots[id] = b;
    this.backendCount++;
    if (b.state === 'active') this.active++;
  }

  deleteBackend(id: number): void {
    const old = this.backendSlots[id];
    if (old === undefined) return;
    this.backendSlots[id] = undefined;
    this.backendCount--;
    if (old.state === 'active') this.active--;
  }

  get backends(): number {
    return this.backendCount;
  }

  get activeBackends(): number {
    return this.active;
  }

  /** Some entry (frontend, table, source range) names this service id. */
  hasService(serviceId: number): boolean {
    return (
      this.byService.has(serviceId) || this.tableMap.has(serviceId) || this.rangeMap.has(serviceId)
    );
  }

  /** Every service id some entry names. */
  serviceIds(): Set<number> {
    return new Set<number>([
      ...this.tableMap.keys(),
      ...this.rangeMap.keys(),
      ...this.byService.keys(),
    ]);
  }
}

/** What an installed table is: from its trailer when it has one, else from its slots. */
function readTable(maps: DatapathMaps, serviceId: number): AppliedTable | undefined {
  const summary = maps.maglevTableTrailer(serviceId);
  if (summary === undefined) return undefined;
  const recorded = readTrailer(summary.trailer);
  if (recorded !== undefined) return recorded;
  const slots = maps.maglevTableWords(serviceId);
  if (slots === undefined) return undefined;
  return { digest: contentDigest(slots), ids: [...new Set(slots)].sort((a, b) => a - b) };
}

export function sameBackend(a: BackendEntry | undefined, b: BackendEntry): boolean {
  return (
    a !== undefined &&
    a.address === b.address &&
    a.port === b.port &&
    a.nodeAddress === b.nodeAddress &&
    a.state === b.state &&
    a.local === b.local
  );
}

export function sameService(a: ServiceEntry | undefined, b: ServiceEntry): boolean {
  return (
    a !== undefined &&
    a.id === b.id &&
    (a.sourceRanges ?? false) === (b.sourceRanges ?? false) &&
    a.affinityTimeoutSeconds === b.affinityTimeoutSeconds
  );
}
