export { XdsServer } from './server.js';
export type * from './callbacks.js';
