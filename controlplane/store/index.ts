export * from './keys.js';
export * from './events.js';
export * from './etcd-store.js';
