// The node agent's public surface: the datapath interface and backends, and
// the stream client. `main.ts` is the composition root of the binary.
export * from './datapath/index.js';
export * from './client/index.js';
export { parseAgentArgs, parseDuration, type AgentArgs } from './args.js';
