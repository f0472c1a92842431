export { NodeTracker } from './node-tracker.js';
export type { NodeView, NodeStateName } from './node-state.js';
