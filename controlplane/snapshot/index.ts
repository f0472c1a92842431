export * from './snapshot-cache.js';
export * from './node-snapshot.js';
export { shardOf, hostPrefix, ipcacheResourceName } from './ipcache.js';
export { endpointResourceName } from './endpoint.js';
