export { Dashboard, type DashboardOptions } from './dashboard.js';
export {
  DashboardFeed,
  type DashboardFeedOptions,
  type FeedUpdate,
  type FeedTimers,
} from './feed.js';
export { DashboardServer, type DashboardServerOptions } from './server.js';
export {
  TrackerDashboardSource,
  LATENCY_BUCKETS_MS,
  type TrackerReads,
  type TrackedNode,
  type TrackedRevision,
  type TrackedApply,
  type TrackedEvent,
} from './tracker-source.js';
export type * from './source.js';
export { NODE_STATES } from './source.js';
export { readState, diffState } from './state.js';
export * from './wire.js';
export * from './page-model.js';
