// The policy engine (pure): validation and compilation of Kubernetes
// NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy into
// per-endpoint policy map entries (common/policy-map.ts), incremental
// recompilation on identity and endpoint churn, and trace.
export type * from './types.js';
export type { PolicyUnit, Rule, Peer, PortItem } from './model.js';
export {
  AUDIT_ANNOTATION,
  describePolicy,
  parsePolicy,
  policyRef,
  validatePolicy,
} from './parse-policy.js';
export { DEFAULT_CAPACITY, PolicyEngine, requiredPrefixes } from './engine.js';
export { compilePolicies, parsePolicies, type ParsedPolicies } from './compile.js';
export { trace, type TraceDecision, type TraceQuery, type TraceResult } from './trace.js';
export { offlineMesh, type OfflineMesh } from './offline-mesh.js';
// The flat per-endpoint table behind EndpointState, exported for its own tests.
export { EntryTable, type EntryKey } from './entry-table.js';
