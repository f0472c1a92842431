export { statusJson } from './status-json.js';
export { EXIT } from './exit-codes.js';
