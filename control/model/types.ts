// The model's output: what one node's datapath should hold and which LB IPs it
// should announce. Plain data, so reconcilers can diff it and `xlb status` can
// print it as is.
import type {
  AnnounceReason,
  ExclusionReason,
  OwnershipReason,
  Reason,
  Severity,
} from './reasons.js';

export type Family = 4 | 6;
export type Protocol = 'TCP' | 'UDP';
export type TrafficPolicy = 'Cluster' | 'Local';
export type BackendState = 'active' | 'terminating';

export interface ModelOptions {
  /** spec.loadBalancerClass that marks a Service as ours. */
  loadBalancerClass: string;
  /** Also take LoadBalancer Services that name no class at all. */
  defaultClass: boolean;
}

export interface Frontend {
  address: string;
  port: number;
  protocol: Protocol;
}

export interface Backend {
  address: string;
  port: number;
  /** Where the pod runs; absent when the endpoint names no node (only kept if local). */
  nodeName?: string;
  /** The tunnel destination for remote backends; absent when unknown (only kept if local). */
  nodeAddress?: string;
  state: BackendState;
  local: boolean;
  /** Maglev identity, the same on every node. */
  identity: string;
  weight: number;
}

/** An endpoint that matched the unit's port and family but is not one of its backends. */
export interface ExcludedEndpoint {
  address: string;
  port: number;
  nodeName?: string;
  reason: ExclusionReason;
}

export interface SourceRanges {
  /** When true, only clients inside `cidrs` are admitted (none when it is empty). */
  enforced: boolean;
  cidrs: string[];
}

/**
 * The datapath unit: one (Service, service port, IP family). Its own backend
 * set, Maglev table and id (the id is the reconciler's business).
 */
export interface Unit {
  /** `namespace/name:portNameOrNumber/PROTO/v4`, stable across restarts. */
  key: string;
  service: string;
  /** The service port's name; '' when unnamed. */
  portName: string;
  servicePort: number;
  protocol: Protocol;
  family: Family;
  trafficPolicy: TrafficPolicy;
  frontends: Frontend[];
  backends: Backend[];
  excluded: ExcludedEndpoint[];
  /** sessionAffinity ClientIP timeout; absent when there is no affinity. */
  affinityTimeoutSeconds?: number;
  sourceRanges: SourceRanges;
  tableSize: number;
}

export interface Decision {
  /** `namespace/name` of the Service. */
  service: string;
  reason: Reason;
  severity: Severity;
  message: string;
  /** The unit it concerns, when it concerns one. */
  unit?: string;
}

export interface NodeDecision {
  node: string;
  reason: Reason;
  severity: Severity;
  message: string;
}

export interface Announcement {
  service: string;
  address: string;
  family: Family;
  announce: boolean;
  reason: AnnounceReason;
  /** Relative ECMP weight: local serving endpoints under Local policy, 1 under Cluster, 0 when not announced. */
  weight: number;
  message: string;
}

export type Ownership =
  { owned: true } | { owned: false; reason: OwnershipReason; message: string };

export interface ServiceModel {
  service: string;
  ownership: Ownership;
  units: Unit[];
  announcements: Announcement[];
  decisions: Decision[];
}

export interface NodeModel {
  nodeName: string;
  units: Unit[];
  announcements: Announcement[];
  decisions: Decision[];
  nodeDecisions: NodeDecision[];
}
