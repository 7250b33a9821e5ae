// Datapath units as the model produces them, stated briefly, for reconciler
// tests; and an in-memory id store for the id allocator's pure tests.
import type { IdStore } from '../../control/datapath/ids.js';
import {
  backendIdentity,
  type Backend,
  type Family,
  type Protocol,
  type Unit,
} from '../../control/model/index.js';

export interface BackendSpec {
  address: string;
  port?: number;
  nodeAddress?: string;
  state?: 'active' | 'terminating';
  local?: boolean;
  weight?: number;
}

export interface UnitSpec {
  /** namespace/name; default default/web */
  service?: string;
  port?: number;
  protocol?: Protocol;
  family?: Family;
  vips: string[];
  backends: BackendSpec[];
  tableSize?: number;
  affinityTimeoutSeconds?: number;
  /** Enforced source ranges (any family; the unit keeps its own). */
  sourceRanges?: string[];
}

export function backend(b: BackendSpec, family: Family): Backend {
  const port = b.port ?? 8080;
  return {
    address: b.address,
    port,
    ...(b.nodeAddress !== undefined ? { nodeAddress: b.nodeAddress } : {}),
    state: b.state ?? 'active',
    local: b.local ?? true,
    identity: backendIdentity(family, b.address, port),
    weight: b.weight ?? 1,
  };
}

export function unit(s: UnitSpec): Unit {
  const service = s.service ?? 'default/web';
  const port = s.port ?? 80;
  const protocol = s.protocol ?? 'TCP';
  const family = s.family ?? (s.vips[0]?.includes(':') ? 6 : 4);
  return {
    key: `${service}:${port}/${protocol}/v${family}`,
    service,
    portName: '',
    servicePort: port,
    protocol,
    family,
    trafficPolicy: 'Cluster',
    frontends: s.vips.map((address) => ({ address, port, protocol })),
    backends: s.backends.map((b) => backend(b, family)),
    excluded: [],
    ...(s.affinityTimeoutSeconds !== undefined
      ? { affinityTimeoutSeconds: s.affinityTimeoutSeconds }
      : {}),
    sourceRanges: { enforced: s.sourceRanges !== undefined, cidrs: s.sourceRanges ?? [] },
    tableSize: s.tableSize ?? 251,
  };
}

/** The same unit with other backends. */
export function withBackends(u: Unit, backends: BackendSpec[]): Unit {
  return { ...u, backends: backends.map((b) => backend(b, u.family)) };
}

/** An IdStore in memory: what the pinned xlb_ids map is to the agent. */
export class MemoryIdStore implements IdStore {
  readonly records = new Map<string, Buffer>();
  writes = 0;

  *entries(): Generator<[Buffer, Buffer]> {
    for (const [k, v] of this.records) yield [Buffer.from(k, 'hex'), Buffer.from(v)];
  }

  update(key: Buffer, value: Buffer): void {
    this.writes++;
    this.records.set(key.toString('hex'), Buffer.from(value));
  }

  delete(key: Buffer): boolean {
    this.writes++;
    return this.records.delete(key.toString('hex'));
  }
}
