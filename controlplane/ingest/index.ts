export { ChangeSetCommitter, type CommitItem, type CommitOutcome } from './committer.js';
export { EventConsumer, type EventConsumerOptions } from './event-consumer.js';
export { SourceRegistry, type SourceState } from './source-registry.js';
export {
  planChangeSet,
  alreadyApplied,
  type SourcePosition,
  type ClusterReadState,
} from './plan.js';
export { validateChangeSet } from './validate-event.js';
export { mergeChangeSets } from './merge.js';
export { ClusterMembership } from './membership.js';
export type { Membership } from './plan.js';
export { monitorSourceLeases } from './lease-monitor.js';
export { awaitCommitted, recordRefusal } from './commit-watch.js';
export {
  ChangeSetAssembler,
  type ArrivedPart,
  type AssembledChangeSet,
  type AbandonedChangeSet,
} from './assembler.js';
