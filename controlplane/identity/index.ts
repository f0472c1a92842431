export * from './labels.js';
export * from './numbering.js';
export * from './allocator.js';
export * from './gc.js';
export * from './gc-plan.js';
export * from './cidr-allocator.js';
