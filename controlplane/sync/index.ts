export { MeshSync } from './mesh-sync.js';
