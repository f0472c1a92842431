export * from './errors.js';
export * from './records.js';
export * from './digest.js';
export * from './resources.js';
export * from './abort.js';
export * from './async-queue.js';
export * from './log.js';
export * from './policy-map.js';
