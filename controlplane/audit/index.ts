export { EtcdAuditLog, type AuditLog, type AuditRecord, type AuditedCluster } from './audit-log.js';
