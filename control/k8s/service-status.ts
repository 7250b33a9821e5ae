// What a Service's object should say, given what the allocator decided: the
// finalizer, status.loadBalancer.ingress and xlb's condition. Pure: the
// writers apply it, and after a conflict compute it again from a fresh read.
import type { V1Service } from '@kubernetes/client-node';

import {
  allocationSeverity,
  type AllocationReason,
  type ServiceAllocation,
} from '../ipam/index.js';
import { asArray, asRecord, asString } from '../model/guards.js';
import { parseIp } from '../model/ip.js';
import { classifyService } from '../model/ownership.js';
import type { ModelOptions } from '../model/types.js';
import { addressToBigInt, familyOf, parseIP } from '../resources/addresses.js';
import { parseAddressBlock, type AddressBlock } from '../resources/ip-pool.js';

/** The finalizer Kubernetes reserves for load balancer cleanup (what the cloud controllers use). */
export const LB_FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';

/** xlb's condition on a Service: whether it has its addresses, and if not, why. */
export const ADDRESS_CONDITION = 'xlb.dev/AddressAssigned';

/** The reason of a True condition: one word, so a restart (restored, not allocated) writes nothing. */
export const ASSIGNED_REASON = 'Assigned';
export const RELEASING_REASON = 'Releasing';

/** A metav1.Condition as written (times as RFC 3339 text). */
export interface ConditionObject {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface IngressObject {
  ip?: string;
  ipMode?: string;
  [field: string]: unknown;
}

/** The two status fields xlb writes, each whole (a merge patch replaces lists). */
export interface StatusWrite {
  ingress: IngressObject[];
  conditions: ConditionObject[];
}

/** metav1.Time: RFC 3339 in whole seconds. */
export function metaTime(t: Date): string {
  return t.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function timeText(value: unknown, fallback: Date): string {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return metaTime(value);
  if (typeof value === 'string' && !Number.isNaN(Date.parse(value)))
    return metaTime(new Date(value));
  return metaTime(fallback);
}

const metadataOf = (svc: V1Service): Record<string, unknown> => asRecord(svc.metadata) ?? {};

export function finalizersOf(svc: V1Service): string[] {
  return asArray(metadataOf(svc)['finalizers']).filter((f): f is string => typeof f === 'string');
}

export function hasOurFinalizer(svc: V1Service): boolean {
  return finalizersOf(svc).includes(LB_FINALIZER);
}

export function isDeleting(svc: V1Service): boolean {
  const ts = metadataOf(svc)['deletionTimestamp'];
  return ts !== undefined && ts !== null;
}

function generationOf(svc: V1Service): number | undefined {
  const g = metadataOf(svc)['generation'];
  return typeof g === 'number' && Number.isInteger(g) && g >= 0 ? g : undefined;
}

function ingressOf(svc: V1Service): IngressObject[] {
  const lb = asRecord(asRecord(svc.status)?.['loadBalancer']);
  return asArray(lb?.['ingress'])
    .map((i) => asRecord(i))
    .filter((i): i is Record<string, unknown> => i !== undefined)
    .map((i) => ({ ...i }));
}

/** status.loadBalancer.ingress[].ip, canonical, in order (entries without a valid ip left out). */
export function ingressIps(svc: V1Service): string[] {
  return ingressOf(svc)
    .map((i) => parseIp(i.ip)?.address)
    .filter((ip): ip is string => ip !== undefined);
}

/** Every condition, times as text, so it can be written back unchanged. */
function conditionsOf(svc: V1Service, now: Date): ConditionObject[] {
  const out: ConditionObject[] = [];
  for (const raw of asArray(asRecord(svc.status)?.['conditions'])) {
    const c = asRecord(raw);
    const type = asString(c?.['type']);
    if (c === undefined || type === undefined) continue;
    const status = c['status'];
    const gen = c['observedGeneration'];
    out.push({
      type,
      status: status === 'True' || status === 'False' ? status : 'Unknown',
      reason: asString(c['reason']) ?? 'Unknown',
      message: asString(c['message']) ?? '',
      lastTransitionTime: timeText(c['lastTransitionTime'], now),
      ...(typeof gen === 'number' ? { observedGeneration: gen } : {}),
    });
  }
  return out;
}

export function ourCondition(svc: V1Service): ConditionObject | undefined {
  return conditionsOf(svc, new Date(0)).find((c) => c.type === ADDRESS_CONDITION);
}

/** 'poolExhausted' -> 'PoolExhausted': a condition reason is CamelCase. */
export function conditionReason(reason: AllocationReason): string {
  return reason.charAt(0).toUpperCase() + reason.slice(1);
}

type ConditionContent = Omit<ConditionObject, 'lastTransitionTime'>;

/** The condition an owned Service gets from its allocation. */
export function assignmentCondition(
  alloc: ServiceAllocation,
  generation?: number,
): ConditionContent {
  const has = !alloc.pending && alloc.addresses.length > 0;
  // A Service that keeps its address despite a problem (an invalid request)
  // says so in the reason; a plain success reads the same after a restart.
  const reason =
    !has || allocationSeverity(alloc.reason) === 'warning'
      ? conditionReason(alloc.reason)
      : ASSIGNED_REASON;
  return {
    type: ADDRESS_CONDITION,
    status: has ? 'True' : 'False',
    reason,
    message: alloc.message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

function sameCondition(a: ConditionContent, b: ConditionContent): boolean {
  return (
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration
  );
}

/**
 * `conditions` with ours set to `next` (removed when undefined), the others
 * untouched. lastTransitionTime moves only when the status flips.
 */
function withCondition(
  conditions: ConditionObject[],
  next: ConditionContent | undefined,
  now: Date,
): ConditionObject[] {
  const old = conditions.find((c) => c.type === ADDRESS_CONDITION);
  const others = conditions.filter((c) => c.type !== ADDRESS_CONDITION);
  if (next === undefined) return others;
  const time =
    old !== undefined && old.status === next.status ? old.lastTransitionTime : metaTime(now);
  const mine: ConditionObject = { ...next, lastTransitionTime: time };
  // Ours keeps its place in the list, so a rewrite does not reorder what kubectl shows.
  return old === undefined
    ? [...others, mine]
    : conditions.map((c) => (c.type === ADDRESS_CONDITION ? mine : c));
}

function sameIngress(a: IngressObject[], b: IngressObject[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i]!;
      return parseIp(x.ip)?.address === parseIp(y.ip)?.address && x.ipMode === y.ipMode;
    })
  );
}

/** The status an owned Service should have; undefined when it already has it. */
export function ownedStatus(
  svc: V1Service,
  alloc: ServiceAllocation,
  now: Date,
): StatusWrite | undefined {
  const current = ingressOf(svc);
  const ingress = alloc.addresses.map((a) => ({ ip: a.address, ipMode: 'VIP' }));
  const conditions = conditionsOf(svc, now);
  const want = assignmentCondition(alloc, generationOf(svc));
  const have = conditions.find((c) => c.type === ADDRESS_CONDITION);
  const ingressOk = sameIngress(current, ingress);
  if (ingressOk && have !== undefined && sameCondition(have, want)) return undefined;
  return { ingress, conditions: withCondition(conditions, want, now) };
}

/**
 * The status once `released` is gone from ingress. A Service being deleted
 * says it is releasing; one that is no longer ours loses our condition.
 * Undefined when there is nothing to change.
 */
export function releasedStatus(
  svc: V1Service,
  released: readonly string[],
  deleting: boolean,
  now: Date,
): StatusWrite | undefined {
  const gone = new Set(released);
  const current = ingressOf(svc);
  const ingress = current.filter((i) => !gone.has(parseIp(i.ip)?.address ?? ''));
  const conditions = conditionsOf(svc, now);
  const have = conditions.find((c) => c.type === ADDRESS_CONDITION);
  let want: ConditionContent | undefined;
  if (deleting) {
    const shown = released.length > 0 ? released.join(', ') : 'its addresses';
    want = {
      type: ADDRESS_CONDITION,
      status: 'False',
      reason: RELEASING_REASON,
      message: `being deleted: released ${shown}; the finalizer goes once no node serves or announces them`,
      ...(generationOf(svc) !== undefined ? { observedGeneration: generationOf(svc) } : {}),
    };
  }
  // A releasing condition already written stays as it is (a retry knows fewer addresses).
  const conditionOk = deleting
    ? have?.status === 'False' && have.reason === RELEASING_REASON
    : have === undefined;
  if (ingress.length === current.length && conditionOk) return undefined;
  return { ingress, conditions: withCondition(conditions, want, now) };
}

/** Whether an address lies in one of the IPPools' blocks, valid pools or not. */
export function poolMembership(pools: readonly unknown[]): (ip: string) => boolean {
  const blocks: AddressBlock[] = [];
  for (const p of pools) {
    for (const text of asArray(asRecord(asRecord(p)?.['spec'])?.['addresses'])) {
      if (typeof text !== 'string') continue;
      try {
        blocks.push(parseAddressBlock(text));
      } catch {
        // An unreadable block holds no address (the pool's Invalid condition says why).
      }
    }
  }
  return (ip) => {
    const a = parseIP(ip);
    if (a === undefined) return false;
    const family = familyOf(a);
    const v = addressToBigInt(a);
    return blocks.some((b) => b.family === family && b.first <= v && v <= b.last);
  };
}

/** Why a Service carrying our finalizer must be cleaned up, or 'none'. */
export type CleanupCause = 'none' | 'deleting' | 'notOurs';

export function cleanupCause(svc: V1Service, options: ModelOptions): CleanupCause {
  if (!hasOurFinalizer(svc)) return 'none';
  if (isDeleting(svc)) return 'deleting';
  return classifyService(svc, options).owned ? 'none' : 'notOurs';
}

/**
 * The ingress addresses xlb wrote and must release. A Service of ours: all
 * of them (its status is ours). One that is no longer ours: only while our
 * condition says it has its addresses, and only those in our pools. A
 * Service whose type changed lost its ingress to the API server already; one
 * that went through another type to another class (while no xlb leader
 * watched) may hold the other implementation's addresses, which stay.
 */
export function addressesToRelease(
  svc: V1Service,
  owned: boolean,
  inOurPools: (ip: string) => boolean,
): string[] {
  const ips = ingressIps(svc);
  if (owned) return ips;
  if (ourCondition(svc)?.status !== 'True') return [];
  return ips.filter(inOurPools);
}
