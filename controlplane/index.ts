export { ControlPlane, type ControlPlaneOptions } from './control-plane.js';
export type { SnapshotCache, MeshRevision } from './snapshot/index.js';
