// `xlb explain`: which backend a flow goes to and why, read from the pinned datapath.
export { FlowInputError, parseFlow, type ExplainFlow } from './flow.js';
export { PinnedDatapath, PinnedDatapathError, type PinnedDatapathErrorReason } from './pinned.js';
export { explainPinned, gatherFacts, monotonicNowNs } from './reader.js';
export { explanationJson, renderExplanation } from './render.js';
export {
  describeBackend,
  explainFlow,
  matchingRanges,
  type ChosenBackend,
  type Explanation,
  type FlowFacts,
  type Verdict,
} from './verdict.js';
