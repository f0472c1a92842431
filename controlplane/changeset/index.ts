export {
  ChangeSetApplier,
  type ChangeSetApplierDeps,
  type ChangeSetInput,
  type ChangeSetOutcome,
  type ClusterIssue,
  type ClusterSources,
} from './applier.js';
export { natsClusterSources } from './nats-sources.js';
