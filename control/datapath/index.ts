// The datapath as the agent uses it: open (install, adopt or upgrade) the
// pinned datapath on the uplink, reconcile units into its maps, export its
// counters as metrics.
export {
  DatapathLifecycleError,
  DEFAULT_PIN_DIR,
  OpenedDatapath,
  openDatapath,
  type DatapathVerdict,
  type LifecycleErrorReason,
  type OpenDatapathOptions,
} from './lifecycle.js';
export {
  DatapathReconciler,
  type DatapathReconcilerOptions,
  type IdOp,
  type MapOp,
  type PassTimings,
  type ReconcileFailure,
  type ReconcileResult,
  type UnitChange,
  type UnitSnapshot,
} from './reconciler.js';
export { ReconcileLoop, realTimer, type LoopTimer, type ReconcileLoopOptions } from './loop.js';
export {
  DatapathIds,
  IdMapError,
  IdsExhaustedError,
  QUARANTINE_MS,
  type IdCapacities,
  type IdKind,
} from './ids.js';
export {
  registerDatapathMetrics,
  type DatapathMetricsSource,
  type ServiceCounterLabels,
} from './metrics.js';
export type { PlanFinding } from './plan.js';
export {
  defaultSettings,
  loadDatapath,
  type Datapath,
  type DatapathSettings,
  type MapSizes,
} from './load.js';
export type { DatapathMaps } from './maps.js';
