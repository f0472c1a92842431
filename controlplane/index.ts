export { ControlPlane, type ControlPlaneOptions } from './control-plane.js';
export type { SnapshotCache, MeshRevision } from './snapshot/index.js';
export type {
  Tracker,
  TrackerEvent,
  SkewReport,
  NodeView,
  NodeDetail,
  RevisionSummary,
} from './telemetry/index.js';
