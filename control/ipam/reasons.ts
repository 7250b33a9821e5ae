// Every reason the allocator gives, with how loud it is. One table, so the
// Kubernetes layer can map them to event types and metrics can pre-register
// their label values. Reasons name a cause; messages say which object and what
// to do about it.
// 'info': what the configuration asks for. 'warning': a user probably wants
// something else, or the Service does not get what it asks for.
export type Severity = 'info' | 'warning';

export const allocationReasons = {
  // The Service has what it needs.
  allocated: 'info',
  restored: 'info',
  deleting: 'info',

  // Why a Service is pending (also the detail of AllocationFailed events).
  poolExhausted: 'warning',
  noPoolForService: 'warning',
  poolNotFound: 'warning',
  poolUnavailable: 'warning',
  requestedIPNotInPool: 'warning',
  requestedIPInUse: 'warning',
  sharingConflict: 'warning',
  dualStackUnavailable: 'warning',
  invalidRequest: 'warning',

  // Why a Service lost an address it held (the detail of IPReleased events).
  // sharingConflict and dualStackUnavailable above also release.
  notInPool: 'warning',
  poolDisabled: 'warning',
  poolRejected: 'warning',
  notAdmitted: 'warning',
  requestChanged: 'info',
  familyNotRequested: 'info',
} as const satisfies Record<string, Severity>;

export type AllocationReason = keyof typeof allocationReasons;

export type PendingReason = Extract<
  AllocationReason,
  | 'poolExhausted'
  | 'noPoolForService'
  | 'poolNotFound'
  | 'poolUnavailable'
  | 'requestedIPNotInPool'
  | 'requestedIPInUse'
  | 'sharingConflict'
  | 'dualStackUnavailable'
  | 'invalidRequest'
>;

/** Every reason a Service can be pending for (metrics pre-register them). */
export const pendingReasonNames: readonly PendingReason[] = [
  'poolExhausted',
  'noPoolForService',
  'poolNotFound',
  'poolUnavailable',
  'requestedIPNotInPool',
  'requestedIPInUse',
  'sharingConflict',
  'dualStackUnavailable',
  'invalidRequest',
];

export type ReleaseReason = Extract<
  AllocationReason,
  | 'notInPool'
  | 'poolDisabled'
  | 'poolRejected'
  | 'notAdmitted'
  | 'requestChanged'
  | 'familyNotRequested'
  | 'sharingConflict'
  | 'dualStackUnavailable'
>;

export const allocationReasonNames = Object.keys(allocationReasons) as AllocationReason[];

export function allocationSeverity(reason: AllocationReason): Severity {
  return allocationReasons[reason];
}

/** Kubernetes event reasons (the `reason` field of an Event), CamelCase as kubectl shows them. */
export type AllocationEventReason = 'IPAllocated' | 'IPReleased' | 'AllocationFailed';

/** Pool condition reasons (metav1.Condition.reason: CamelCase). */
export type PoolConditionReason =
  | 'Serving'
  | 'Disabled'
  | 'Overlap'
  | 'Invalid'
  | 'NoOverlap'
  | 'OverlapsEarlierPool'
  | 'Valid'
  | 'InvalidSpec';
