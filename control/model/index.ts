// Service + EndpointSlices + Nodes + this node's name -> what this node's
// datapath should hold and which LB IPs it should announce, every decision
// with a reason. Pure: no I/O, same input (in any order) -> same output.
export type {
  Announcement,
  Backend,
  BackendState,
  Decision,
  ExcludedEndpoint,
  Family,
  Frontend,
  ModelOptions,
  NodeDecision,
  NodeModel,
  Ownership,
  Protocol,
  ServiceModel,
  SourceRanges,
  TrafficPolicy,
  Unit,
} from './types.js';
export {
  reasonNames,
  reasons,
  severityOf,
  type AnnounceReason,
  type ExclusionReason,
  type OwnershipReason,
  type Reason,
  type Severity,
} from './reasons.js';
export { DEFAULT_LOAD_BALANCER_CLASS, defaultOptions, resolveOptions } from './options.js';
export { classifyService } from './ownership.js';
export { EXCLUDE_LABEL, indexNodes, type NodeFacts, type NodeIndex } from './nodes.js';
export {
  backendIdentity,
  endpointState,
  SERVICE_NAME_LABEL,
  type EndpointState,
} from './endpoints.js';
export { DEFAULT_AFFINITY_TIMEOUT_SECONDS, MAX_AFFINITY_TIMEOUT_SECONDS } from './affinity.js';
export { SOURCE_RANGES_ANNOTATION } from './source-ranges.js';
export { SLOTS_PER_BACKEND, TABLE_SIZE_ANNOTATION } from './table-size.js';
export { deriveService, serviceKey, unitKey, type ServiceInput } from './service.js';
export { deriveNode, resolveFrontendConflicts, type NodeInput } from './node.js';
export {
  NodeModelCache,
  type ModelChanges,
  type ModelSource,
  type ModelUpdate,
  type ServiceModelChange,
} from './incremental.js';
