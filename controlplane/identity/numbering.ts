import { MeshError } from '../../common/index.js';

/**
 * Identity numbering as in Cilium: reserved identities below 256,
 * cluster-scoped `(clusterId << 16) | n` with n in 256..65535, CIDR
 * identities `(1 << 24) | n`.
 */
export const RESERVED = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
} as const;

export const CLUSTER_LOCAL_MIN = 256;
export const CLUSTER_LOCAL_MAX = 65535;

export function clusterIdentity(clusterId: number, n: number): number {
  if (!Number.isInteger(clusterId) || clusterId < 1 || clusterId > 255) {
    throw new MeshError('VALIDATION', `cluster id ${clusterId} is outside 1..255`);
  }
  if (!Number.isInteger(n) || n < CLUSTER_LOCAL_MIN || n > CLUSTER_LOCAL_MAX) {
    throw new MeshError(
      'IDENTITY_EXHAUSTED',
      `cluster ${clusterId} has no identity left (local number ${n} is outside ${CLUSTER_LOCAL_MIN}..${CLUSTER_LOCAL_MAX})`,
    );
  }
  return ((clusterId << 16) | n) >>> 0;
}

export function splitIdentity(id: number): { clusterId: number; local: number } {
  return { clusterId: (id >>> 16) & 0xff, local: id & 0xffff };
}
