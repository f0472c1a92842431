export * from './labels.js';
export * from './numbering.js';
