// The benchmarks' public surface, for tests that keep them from rotting.
export {
  runIdentityChurn,
  type IdentityChurnOptions,
  type IdentityChurnResult,
  type ChangeSetTiming,
} from './identity-churn.js';
export { parseHandledTotals, rpcDelta, total, metricSum } from './lib/etcd-metrics.js';
export { parseNanoTimestamp, percentile } from './lib/stats.js';
export {
  DEFAULT_SHAPE,
  generateWorkload,
  seededRandom,
  type WorkloadShape,
} from './lib/workload.js';
export {
  runServicesBench,
  type ServicesBenchOptions,
  type ServicesBenchResult,
} from './services.js';
export { runServicesReplay } from './services-replay.js';
export {
  DEFAULT_SERVICES_SHAPE,
  generateServicesWorkload,
  type ServicesShape,
} from './lib/services-workload.js';
export { runDatapathBench, type DatapathBenchOptions, type ScenarioFigures } from './datapath.js';
export { runDatapathProgBench, type DatapathProgOptions } from './datapath-prog.js';
export { measureAgentApply, measureMapProgramming, measureVerify } from './datapath-maps.js';
export {
  runDashboardBench,
  type DashboardBenchOptions,
  type DashboardBenchResult,
} from './dashboard.js';
export { EmulatedFleet, DEFAULT_FLEET, type FleetShape } from './dashboard-fleet.js';
export { runPropagation, type PropagationOptions, type PropagationResult } from './propagation.js';
export {
  clusterSpecs,
  newPodChange,
  pctPolicyChange,
  podsOfNodes,
  propagationShape,
  type PropagationShape,
} from './lib/propagation-workload.js';
export { ackLatencies, syncView } from './lib/ack-latency.js';
export { runPropagationCpu, type PropagationCpuOptions } from './propagation-cpu.js';
export { runPropagationFloor, type PropagationFloorOptions } from './propagation-floor.js';
export { runAgentRevision, type AgentRevisionOptions } from './agent-revision.js';
