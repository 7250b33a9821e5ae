// `xlb status`: the pinned datapath's view and the running agent's.
export {
  agentStatus,
  type AgentServiceStatus,
  type AgentStatus,
  type AgentStatusSource,
  type BgpSessionStatus,
} from './agent-status.js';
export { collectStatus, fetchAgentStatus, readPinnedStatus, type Status } from './collect.js';
export {
  readDatapathStatus,
  type BackendStatus,
  type CounterStatus,
  type DatapathStatus,
  type ServiceStatus,
} from './datapath-status.js';
export { renderStatus } from './render.js';
