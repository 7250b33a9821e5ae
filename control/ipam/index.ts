// The LB IP allocator: pure, no Kubernetes I/O. The Kubernetes layer feeds it
// pools, Services and namespace labels, and writes what it returns.
export { allocate } from './allocate.js';
export { Allocator, type ReconcileInput } from './allocator.js';
export { AddressSpace, type AddressRange } from './address-space.js';
export {
  toIPPoolStatus,
  type IPPoolConditionObject,
  type IPPoolStatusObject,
  type IPPoolUsageObject,
} from './pool-status.js';
export {
  allocationReasonNames,
  allocationReasons,
  allocationSeverity,
  pendingReasonNames,
  type AllocationEventReason,
  type AllocationReason,
  type PendingReason,
  type PoolConditionReason,
  type ReleaseReason,
} from './reasons.js';
export { ANNOTATIONS } from './requests.js';
export type {
  AllocationEvent,
  AllocationInput,
  AllocationResult,
  AssignedAddress,
  PoolCondition,
  PoolState,
  PoolStatus,
  PoolUsage,
  ServiceAllocation,
} from './types.js';
