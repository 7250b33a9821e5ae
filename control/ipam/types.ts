// The allocator's input and output: plain data, so the Kubernetes layer can
// write it to Service and IPPool status as is and tests can compare it whole.
import type { V1Service } from '@kubernetes/client-node';

import type { Family, ModelOptions } from '../model/types.js';

import type {
  AllocationEventReason,
  AllocationReason,
  PoolConditionReason,
  Severity,
} from './reasons.js';

export interface AllocationInput {
  /**
   * IPPool objects as read (validated here: an invalid pool gets an Invalid
   * condition and allocates nothing, the others keep working).
   */
  pools: readonly unknown[];
  /** Every Service; the ones that are not ours are left alone (see ownership). */
  services: readonly V1Service[];
  /**
   * Labels per namespace name, for namespaceSelector. A namespace missing here
   * has no labels but `kubernetes.io/metadata.name`, which is always implied.
   */
  namespaces?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  options?: Partial<ModelOptions>;
  /**
   * Addresses this process assigned (key `namespace/name`) that the Services'
   * status may not show yet: a status write in flight, or one the informer has
   * not delivered. They replace what status says for that Service, so a stale
   * read never hands an address out twice. Allocator passes its last result.
   */
  inFlight?: ReadonlyMap<string, readonly string[]>;
}

export interface AssignedAddress {
  /** Canonical text (dotted quad, or RFC 5952 for IPv6). */
  address: string;
  family: Family;
  pool: string;
}

export interface ServiceAllocation {
  /** `namespace/name`. */
  service: string;
  /**
   * What status.loadBalancer.ingress should list, primary family first
   * (spec.ipFamilies order). Empty when pending with nothing to keep.
   */
  addresses: AssignedAddress[];
  /** The Service lacks an address it needs; `reason` says why. */
  pending: boolean;
  reason: AllocationReason;
  message: string;
  /** `addresses` differ from what the Service's status lists: write it. */
  changed: boolean;
}

export interface AllocationEvent {
  /** `namespace/name` of the Service the event is about. */
  service: string;
  type: 'Normal' | 'Warning';
  reason: AllocationEventReason;
  /** The allocator's reason behind it. */
  detail: AllocationReason;
  message: string;
  /** The address allocated or released, if the event is about one. */
  address?: string;
}

export interface PoolUsage {
  /** Addresses the pool's blocks hold (less .0/.255 with avoidBuggyIPs). */
  total: bigint;
  /** Addresses held by Services (shared ones once), ours or another implementation's. */
  used: bigint;
  /** Addresses the pool can still hand out: 0 when it is not serving. */
  free: bigint;
}

export type PoolState = 'serving' | 'disabled' | 'overlap' | 'invalid';

export interface PoolCondition {
  type: 'Ready' | 'Overlap' | 'Invalid';
  status: 'True' | 'False';
  reason: PoolConditionReason;
  message: string;
}

export interface PoolStatus {
  name: string;
  state: PoolState;
  /** Present for the families the pool has blocks of. */
  ipv4?: PoolUsage;
  ipv6?: PoolUsage;
  conditions: PoolCondition[];
}

export interface AllocationResult {
  /** Our Services, by key. */
  services: ServiceAllocation[];
  /**
   * Differences from what each Service held at input (status, or inFlight),
   * in Service key order. A pending Service gets its AllocationFailed event in
   * every result; Allocator drops repeats.
   */
  events: AllocationEvent[];
  /** Every named pool, by name. */
  pools: PoolStatus[];
}

export type { Severity };
