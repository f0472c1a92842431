export * from './snapshot-cache.js';
export * from './node-snapshot.js';
export { shardOf, hostPrefix, ipcacheResourceName } from './ipcache.js';
export { endpointResourceName } from './endpoint.js';
export { serviceResourceName, type ServicesState } from './services-state.js';
export { BucketedMap } from './bucketed-map.js';
