export { runWhileLeader } from './leader.js';
