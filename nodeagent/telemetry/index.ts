export { registerAgentMetrics, AGENT_METRICS } from './metrics.js';
export { registerAgentTracing } from './tracing.js';
