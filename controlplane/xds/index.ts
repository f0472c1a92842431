export { XdsServer, type XdsServerOptions } from './server.js';
export type * from './callbacks.js';
export { combineCallbacks } from './callbacks.js';
export { PushScheduler } from './push-scheduler.js';
