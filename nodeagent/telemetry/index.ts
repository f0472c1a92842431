export { registerAgentMetrics, AGENT_METRICS } from './metrics.js';
