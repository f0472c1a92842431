export { XdsServer, type XdsServerOptions } from './server.js';
export type * from './callbacks.js';
export { combineCallbacks } from './callbacks.js';
export { PushScheduler } from './push-scheduler.js';
export { PartDiffs, groupByType, type PartDiff, type TypeDelta } from './part-diff.js';
export { ResourceDigests } from './resource-digest.js';
export {
  ResponseEncoder,
  discoveryServiceDefinition,
  type EncodedResponse,
  type ResponseHead,
} from './response-encoding.js';
export { discoveryServerOptions } from './server-options.js';
export { HeapTrimmer } from './heap-trim.js';
export { MMAP_THRESHOLD_BYTES, glibcFixMmapThreshold, glibcMallocTrim } from './glibc-malloc.js';
