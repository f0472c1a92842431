export * from './types.js';
export { deriveServices } from './derive.js';
export { ClustersetIpAllocator } from './ip-allocator.js';
