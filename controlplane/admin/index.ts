export { adminService, type AdminDeps } from './service.js';
export { buildStatus, type StatusDeps } from './status.js';
export { changeSetService, type ChangeSetServiceDeps } from './change-sets.js';
export { buildSkew, waitForRevision, nodeStatus, type SkewDeps } from './skew.js';
