// Every reason the model can give, with how loud it should be. One table so
// metrics can pre-register their label values and `xlb explain` can list them.
// 'info': the expected outcome of a valid configuration (nothing to fix).
// 'warning': the user probably wants something else, or xlb cannot do what
// the object asks; the object is still served as far as possible.
export type Severity = 'info' | 'warning';

export const reasons = {
  // Ownership: why a Service is not ours.
  notLoadBalancer: 'info',
  otherClass: 'info',
  noClassNotDefault: 'info',
  malformedService: 'warning',
  duplicateService: 'warning',

  // Service level.
  noAddress: 'info',
  invalidIngressAddress: 'warning',
  ingressWithoutIp: 'warning',
  noPorts: 'warning',
  invalidPort: 'warning',
  duplicatePort: 'warning',
  unsupportedProtocol: 'warning',
  unknownTrafficPolicy: 'warning',
  unsupportedSessionAffinity: 'warning',
  invalidAffinityTimeout: 'warning',
  invalidSourceRange: 'warning',
  invalidMaglevTableSize: 'warning',
  maglevTableSmall: 'warning',
  frontendConflict: 'warning',
  invalidSlicePort: 'warning',

  // Why an endpoint is not a backend of a unit.
  endpointNotReady: 'info',
  notLocal: 'info',
  invalidEndpointAddress: 'warning',
  nodeUnknown: 'warning',
  nodeAddressUnknown: 'warning',

  // Announce decisions.
  nodeExcluded: 'info',
  localEndpoints: 'info',
  noLocalEndpoints: 'info',
  hasEndpoints: 'info',
  noEndpoints: 'info',

  // About this node itself.
  thisNodeUnknown: 'warning',
} as const satisfies Record<string, Severity>;

export type Reason = keyof typeof reasons;

export type OwnershipReason = Extract<
  Reason,
  'notLoadBalancer' | 'otherClass' | 'noClassNotDefault' | 'malformedService'
>;

export type ExclusionReason = Extract<
  Reason,
  'endpointNotReady' | 'notLocal' | 'invalidEndpointAddress' | 'nodeUnknown' | 'nodeAddressUnknown'
>;

export type AnnounceReason = Extract<
  Reason,
  'nodeExcluded' | 'localEndpoints' | 'noLocalEndpoints' | 'hasEndpoints' | 'noEndpoints'
>;

export const reasonNames = Object.keys(reasons) as Reason[];

export function severityOf(reason: Reason): Severity {
  return reasons[reason];
}

/** A decision before it is tied to its Service (and unit). */
export interface Finding {
  reason: Reason;
  message: string;
}
