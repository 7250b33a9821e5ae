// Each pool's status: usage per family and three conditions, Ready (serving),
// Overlap and Invalid, always all three so `kubectl wait` and dashboards can
// rely on them. toIPPoolStatus turns it into the CRD's status object.
import type { Family } from '../model/types.js';
import { asArray, asRecord, asString } from '../model/guards.js';

import type { PoolEntry, PoolTable } from './pools.js';
import { familyName } from './requests.js';
import type { PoolCondition, PoolStatus, PoolUsage } from './types.js';

function usage(pool: PoolEntry, family: Family): PoolUsage | undefined {
  const space = pool.spaces[family];
  if (space === undefined) return undefined;
  const holds = pool.state === 'serving' || pool.state === 'disabled';
  return {
    total: space.size,
    used: holds ? space.used : 0n,
    free: pool.state === 'serving' ? space.free : 0n,
  };
}

function conditions(pool: PoolEntry, usages: [Family, PoolUsage][]): PoolCondition[] {
  const problem = pool.problem ?? '';
  const inUse = usages
    .map(([f, u]) => `${familyName(f)}: ${u.used} of ${u.total} addresses in use`)
    .join('; ');
  const ready: PoolCondition =
    pool.state === 'serving'
      ? { type: 'Ready', status: 'True', reason: 'Serving', message: inUse }
      : pool.state === 'disabled'
        ? {
            type: 'Ready',
            status: 'False',
            reason: 'Disabled',
            message:
              'spec.disabled is true: the pool hands out no address, and Services lose the ones they hold from it',
          }
        : pool.state === 'overlap'
          ? { type: 'Ready', status: 'False', reason: 'Overlap', message: problem }
          : { type: 'Ready', status: 'False', reason: 'Invalid', message: problem };
  const overlap: PoolCondition =
    pool.state === 'overlap'
      ? { type: 'Overlap', status: 'True', reason: 'OverlapsEarlierPool', message: problem }
      : {
          type: 'Overlap',
          status: 'False',
          reason: 'NoOverlap',
          message:
            pool.state === 'invalid'
              ? 'not checked: the spec is invalid'
              : 'no address of this pool is in an earlier pool',
        };
  const invalid: PoolCondition =
    pool.state === 'invalid'
      ? { type: 'Invalid', status: 'True', reason: 'InvalidSpec', message: problem }
      : { type: 'Invalid', status: 'False', reason: 'Valid', message: 'the spec is valid' };
  return [ready, overlap, invalid];
}

export function poolStatuses(table: PoolTable): PoolStatus[] {
  return table.entries.map((pool) => {
    const usages: [Family, PoolUsage][] = [];
    for (const family of [4, 6] as const) {
      const u = usage(pool, family);
      if (u !== undefined) usages.push([family, u]);
    }
    const byFamily = Object.fromEntries(usages.map(([f, u]) => [f === 4 ? 'ipv4' : 'ipv6', u]));
    return {
      name: pool.name,
      state: pool.state,
      ...byFamily,
      conditions: conditions(pool, usages),
    };
  });
}

/** One family's usage as the CRD stores it. */
export interface IPPoolUsageObject {
  /** Decimal strings: an IPv6 pool can hold more than an int64 counts. */
  total: string;
  used: number;
  free: string;
}

/** A metav1.Condition. */
export interface IPPoolConditionObject extends PoolCondition {
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** status of an IPPool object (charts/xlb/crds/ippool.yaml). */
export interface IPPoolStatusObject {
  ipv4?: IPPoolUsageObject;
  ipv6?: IPPoolUsageObject;
  conditions: IPPoolConditionObject[];
}

function usageObject(u: PoolUsage): IPPoolUsageObject {
  return { total: u.total.toString(), used: Number(u.used), free: u.free.toString() };
}

/**
 * The status to write. A condition keeps its lastTransitionTime while its
 * status stays the same (read from `previous`, the object's current status),
 * as metav1.Condition asks; only a change takes `now`.
 */
export function toIPPoolStatus(
  status: PoolStatus,
  now: Date,
  previous?: unknown,
  generation?: number,
): IPPoolStatusObject {
  const before = new Map<string, { status?: string; time?: string }>();
  for (const c of asArray(asRecord(previous)?.['conditions'])) {
    const r = asRecord(c);
    const type = asString(r?.['type']);
    if (type !== undefined)
      before.set(type, {
        status: asString(r?.['status']),
        time: asString(r?.['lastTransitionTime']),
      });
  }
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    ...(status.ipv4 !== undefined ? { ipv4: usageObject(status.ipv4) } : {}),
    ...(status.ipv6 !== undefined ? { ipv6: usageObject(status.ipv6) } : {}),
    conditions: status.conditions.map((c) => {
      const old = before.get(c.type);
      const time = old?.status === c.status && old.time !== undefined ? old.time : stamp;
      return {
        ...c,
        lastTransitionTime: time,
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      };
    }),
  };
}
