// What the datapath's maps hold, as the reconciler compares it with the
// desired state: read once from the maps when an agent starts (or adopts a
// running datapath) and then kept in step with every successful write.
import { frontendKey } from './plan.js';
import type { BackendEntry, DatapathMaps, Frontend, ServiceEntry } from './maps.js';

export interface AppliedFrontend {
  frontend: Frontend;
  service: ServiceEntry;
}

export class AppliedState {
  /** VIP -> the frontend count stored with it. */
  readonly vips = new Map<string, number>();
  readonly frontends = new Map<string, AppliedFrontend>();
  /** Service id -> its Maglev table (backend ids, slot 1..M). */
  readonly tables = new Map<number, number[]>();
  /** Service id -> canonical CIDRs. */
  readonly ranges = new Map<number, Set<string>>();
  readonly backends = new Map<number, BackendEntry>();

  static read(maps: DatapathMaps): AppliedState {
    const s = new AppliedState();
    for (const v of maps.vipEntries()) s.vips.set(v.vip, v.frontends);
    for (const f of maps.frontendEntries()) s.frontends.set(frontendKey(f.frontend), f);
    for (const id of maps.maglevServiceIds()) {
      const table = maps.maglevTable(id);
      if (table !== undefined) s.tables.set(id, table);
    }
    for (const r of maps.sourceRangeEntries()) s.addRange(r.serviceId, r.cidr);
    for (const b of maps.backendEntries()) s.backends.set(b.id, b.backend);
    return s;
  }

  addRange(serviceId: number, cidr: string): void {
    const set = this.ranges.get(serviceId) ?? new Set<string>();
    set.add(cidr);
    this.ranges.set(serviceId, set);
  }

  deleteRange(serviceId: number, cidr: string): void {
    const set = this.ranges.get(serviceId);
    set?.delete(cidr);
    if (set?.size === 0) this.ranges.delete(serviceId);
  }

  /** Every service id some entry names. */
  serviceIds(): Set<number> {
    const ids = new Set<number>([...this.tables.keys(), ...this.ranges.keys()]);
    for (const f of this.frontends.values()) ids.add(f.service.id);
    return ids;
  }

  /** Backend ids some installed table names. */
  tableBackends(): Set<number> {
    const ids = new Set<number>();
    for (const t of this.tables.values()) for (const id of t) ids.add(id);
    return ids;
  }
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

export function sameTable(a: readonly number[] | undefined, b: readonly number[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
