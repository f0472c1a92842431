export { Tracker, type TrackerOptions, type NodeDetail } from './tracker.js';
export type { TrackerEvent } from './tracker-events.js';
export {
  NODE_STATES,
  NODE_HISTORY,
  type NodeView,
  type NodeStateName,
  type NodeApply,
} from './node-state.js';
export { splitLatency, type LatencySplit } from './latency.js';
export {
  type SkewReport,
  type ClusterSkew,
  type RevisionSummary,
  type ClusterRevisionSummary,
  type LatencyFigure,
} from './skew.js';
export {
  registerPropagationMetrics,
  CONTROLPLANE_METRICS,
  type PropagationMetricsOptions,
} from './metrics.js';
export { PropagationTracing } from './tracing.js';
