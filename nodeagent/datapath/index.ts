// The node's datapath: the interface the agent uses, the pure
// resources -> entries translator, and the emulated backend.
export type {
  Attributed,
  Datapath,
  DatapathCapacity,
  DatapathChange,
  DatapathContents,
  DatapathCounts,
  EndpointRecord,
  IpcacheRecord,
  PolicyKey,
  PolicyMapChange,
  PolicyRecord,
  ServiceRecord,
} from './types.js';
export { DatapathError, type Rejection } from './errors.js';
export { checkChange, type DatapathView } from './check.js';
export {
  digestOfContents,
  endpointDigestEntry,
  endpointPolicyOf,
  entriesOfContents,
  ipcacheDigestEntry,
  policyDigestEntry,
  policyKeyId,
  serviceDigestEntry,
  serviceName,
} from './entries.js';
export {
  translateDelta,
  type KeyOwners,
  type ResourceDelta,
  type ResourceRemoval,
  type ResourceUpdate,
  type TranslateResult,
} from './translate.js';
export { EntryCursor, ShardBytes } from './shard-bytes.js';
export { EmulatedMaps } from './emulated-maps.js';
export { DEFAULT_CAPACITY, EmulatedDatapath, type EmulatedDatapathOptions } from './emulated.js';
export {
  EbpfDatapath,
  EBPF_DEFAULT_CAPACITY,
  EndpointAttacher,
  Libbpf,
  defaultPinDir,
  removePins,
  type EbpfDatapathOptions,
} from './ebpf/index.js';
