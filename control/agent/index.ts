// One node's control plane without Kubernetes (`xlb agent`): settings, the
// pipeline, and the ports it needs from the datapath and the uplink.
export { Agent, AgentStartError, type AgentDependencies } from './agent.js';
export {
  AGENT_OPTIONS,
  AgentConfigError,
  DEFAULT_HASH_SEED,
  DEFAULT_METRICS_ADDRESS,
  DEFAULT_PIN_DIR,
  LOG_LEVELS,
  readConfigFile,
  resolveAgentSettings,
  resolveUninstallSettings,
  SETTING_KEYS,
  type AgentMode,
  type AgentOptionSpec,
  type AgentSettings,
  type ListenAddress,
  type LogLevel,
  type SettingIssue,
  type SettingKey,
  type SettingSource,
  type SettingsInput,
  type UninstallSettings,
} from './config.js';
export { EXIT_FAILED, EXIT_OK, EXIT_USAGE, registerAgentCommand } from './command.js';
export { datapathPort } from './datapath.js';
export {
  NO_IPV4,
  NO_IPV6,
  resolveDatapathSettings,
  type ResolvedDatapathSettings,
  type SettingOrigin,
} from './datapath-settings.js';
export { AGENT_STEPS, AgentMetrics, type AgentStep } from './metrics.js';
export { diffModel, logModelChanges, type ModelChange } from './model-changes.js';
export type {
  AgentDatapath,
  AgentDatapathSettings,
  DatapathLocation,
  DatapathPort,
  OpenDatapathRequest,
  ReconcileAttempt,
  ReconcileSink,
  UninstallReport,
  UplinkFacts,
  UplinkReader,
} from './ports.js';
export { parseIpAddrJson, readUplink, UplinkError } from './uplink.js';
