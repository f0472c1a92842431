export * from './mesh-model.js';
