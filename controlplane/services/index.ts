export * from './types.js';
export { deriveServices, PodIndex } from './derive.js';
export { ClustersetIpAllocator } from './ip-allocator.js';
