export { statusJson } from './status-json.js';
export { EXIT } from './exit-codes.js';
export {
  CONTROL_PLANE_NATS_USER,
  controlPlanePermissions,
  meshNatsUsers,
  sourceInboxPrefix,
  sourceNatsUser,
  sourcePermissions,
  type MeshNatsUsers,
} from './nats-permissions.js';
export {
  randomNatsPassword,
  removeMeshNatsCredentials,
  writeMeshNatsCredentials,
  type MeshNatsCredentials,
} from './nats-credentials.js';
export { LocalMesh, type LocalMeshOptions } from './local-mesh.js';
export { flowJson, flowLine, flowSummary, type FlowJson, type FlowPeerJson } from './flow-json.js';
export { observeFlows } from './observe-client.js';
export { buildMeshctl } from './program.js';
export { type CliTelemetry } from './call-tracing.js';
