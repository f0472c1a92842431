// Flows: the datapath verdicts agents report (MeshFlows), named from the mesh
// state, kept in a bounded buffer and served to operators (MeshObserve:
// `meshctl observe`, `meshctl lab`).
export {
  FLOW_VERDICTS,
  enrichFlow,
  flowVerdict,
  identityName,
  protocolName,
  type FlowVerdict,
  type PeerLookup,
  type PeerName,
} from './enrich.js';
export { matchesFlow, parseFlowFilter, type FlowFilter, type PeerSelector } from './filter.js';
export { FlowBuffer, type FlowBufferOptions } from './flow-buffer.js';
export { PeerIndex, type PodSource } from './peer-index.js';
export { flowsService, observeService, type FlowServiceDeps } from './service.js';
