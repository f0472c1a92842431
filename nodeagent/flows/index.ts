// Flows on the node: the datapath's verdict events carried to the control
// plane (FlowReporter) and its kernel counters as Prometheus metrics.
export {
  FlowReporter,
  flowRecordOf,
  type FlowReporterOptions,
  type FlowReporterStats,
  type FlowSource,
} from './flow-reporter.js';
export {
  DATAPATH_METRICS,
  registerDatapathMetrics,
  type CounterSource,
} from './datapath-metrics.js';
