export * from './types.js';
export { deriveServices, indexByName, PodIndex } from './derive.js';
export { ClustersetIpAllocator } from './ip-allocator.js';
