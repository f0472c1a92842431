// The node agent's stream client: one DeltaResources stream to the control
// plane, revisions applied as one unit, ACK/NACK, verification, reconnects.
export {
  NodeAgent,
  type ConnectionState,
  type NodeAgentOptions,
  type NodeAgentStatus,
  type VerificationResult,
} from './node-agent.js';
export type { NodeAgentEventName, NodeAgentEvents } from './events.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { silentLogger, type LogFields, type Logger } from './logger.js';
export { ProtocolMismatchError, StreamError, errorDetailOf, rpcCodeOf } from './errors.js';
export { ResourceStore, type HeldResource } from './resource-store.js';
export { ShardPool } from './packed-shard.js';
export { RevisionAssembler, type AssembledRevision } from './revision-assembler.js';
export { RevisionApplier, type ApplyOutcome } from './revision-applier.js';
export { ackRequest } from './requests.js';
export { decodeResponse } from './discovery-client.js';
export { buildDelta, type DeltaResult } from './revision-delta.js';
export { RevisionKeyOwners } from './revision-key-owners.js';
