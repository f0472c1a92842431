export { INGEST_LEASE_SECONDS, runWhileLeader } from './leader.js';
