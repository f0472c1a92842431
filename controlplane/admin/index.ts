export { adminService } from './service.js';
export { buildStatus, type StatusDeps } from './status.js';
