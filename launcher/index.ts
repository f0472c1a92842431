/**
 * Starts real etcd and nats-server (JetStream) on OS-chosen loopback ports in
 * fresh temporary directories, for tests and for `meshctl up`. Every server is
 * owned by its caller, who must stop it; stop() kills the process and removes
 * its directory. Nothing here is shared between calls.
 */
export type {
  EtcdServer,
  NatsServer,
  LaunchOptions,
  Infra,
  ServerBinary,
  NatsAuthorization,
  NatsUser,
  NatsPermissions,
} from './types.js';
export { natsAuthorizationConfig } from './nats-config.js';
export { LaunchError, type ExitStatus } from './launch-error.js';
export { findBinary } from './find-binary.js';
export { startEtcd } from './etcd.js';
export { startNats } from './nats.js';
export { startInfra } from './infra.js';
export { guardCleanup, guardProcess } from './exit-safety-net.js';
