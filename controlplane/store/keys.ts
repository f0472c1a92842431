import { objectKey, type ObjectRef } from '../../common/index.js';

/**
 * etcd key layout. Everything a cluster owns lives under its own prefix, so
 * removing a cluster is one DeleteRange. Bookkeeping (health, leases,
 * elections, tracker state) lives under a separate prefix, so its writes are
 * never mesh revisions.
 */
export interface KeyLayout {
  readonly root: string;
  readonly mesh: string;
  readonly bookkeeping: string;
  cluster(cluster: string): string;
  clusterInfo(cluster: string): string;
  sourceSequence(cluster: string): string;
  objects(cluster: string): string;
  object(cluster: string, ref: ObjectRef): string;
  identityByLabels(cluster: string, labelsHash: string): string;
  identityById(cluster: string, id: number): string;
  identityNext(cluster: string): string;
  /** a released cluster-local number, value = release time (epoch ms) */
  identityReleased(cluster: string, local: number | ''): string;
  /** membership record: written by `clusters join`, removed with the cluster's prefix */
  member(cluster: string): string;
  /** bookkeeping index: which cluster holds an id */
  clusterIdOwner(id: number): string;
  /** bookkeeping: when an identity was first seen unused (GC candidates) */
  identityUnused(cluster: string, id: number | ''): string;
  /** bookkeeping: leader election of the identity GC */
  gcElection: string;
  /** bookkeeping: leader election of change-set ingestion */
  ingestElection: string;
  /** mesh-wide CIDR identity of a prefix (value {id}); the prefix's "/" is written "_" */
  cidrIdentity(prefix: string): string;
  cidrIdentityNext: string;
  /** bookkeeping: when a CIDR identity was first seen unused by every policy */
  cidrUnused(prefix: string): string;
  /** set by the ingest leader while a cluster's source is silent beyond its lease (value: since, ISO) */
  stale(cluster: string): string;
  /** a ServiceImport's clusterset IP (value {ip}), stable for the import's life */
  serviceIp(namespace: string, name: string): string;
  serviceIpNext: string;
  /** bookkeeping: the last change set of a cluster the ingest refused (value {sequence, error, at}) */
  refusedChangeSet(cluster: string): string;
  /** bookkeeping: audit trail of `meshctl apply` / `delete`, one key per change set, in time order */
  auditEntries: string;
}

export function keyLayout(root = '/meshplane'): KeyLayout {
  const mesh = `${root}/mesh/`;
  const cluster = (c: string): string => `${mesh}clusters/${c}/`;
  return {
    root,
    mesh,
    bookkeeping: `${root}/book/`,
    cluster,
    clusterInfo: (c) => `${cluster(c)}info`,
    sourceSequence: (c) => `${cluster(c)}source-seq`,
    objects: (c) => `${cluster(c)}objects/`,
    object: (c, ref) => `${cluster(c)}objects/${objectKey(ref)}`,
    identityByLabels: (c, h) => `${cluster(c)}identities/by-labels/${h}`,
    identityById: (c, id) => `${cluster(c)}identities/by-id/${id}`,
    identityNext: (c) => `${cluster(c)}identities/next`,
    identityReleased: (c, n) => `${cluster(c)}identities/released/${n}`,
    member: (c) => `${cluster(c)}member`,
    clusterIdOwner: (id) => `${root}/book/cluster-ids/${id}`,
    identityUnused: (c, id) => `${root}/book/identity-unused/${c}/${id}`,
    gcElection: 'meshplane-identity-gc',
    ingestElection: 'meshplane-ingest',
    cidrIdentity: (p) => `${mesh}cidr-identities/by-prefix/${p.replace('/', '_')}`,
    cidrIdentityNext: `${mesh}cidr-identities/next`,
    cidrUnused: (p) => `${root}/book/cidr-unused/${p.replace('/', '_')}`,
    stale: (c) => `${cluster(c)}stale`,
    serviceIp: (ns, n) => `${mesh}service-ips/by-name/${ns}/${n}`,
    serviceIpNext: `${mesh}service-ips/next`,
    refusedChangeSet: (c) => `${root}/book/refused-change-sets/${c}`,
    auditEntries: `${root}/book/audit/`,
  };
}

export type ParsedKey =
  | { type: 'cluster-info'; cluster: string }
  | { type: 'member'; cluster: string }
  | { type: 'source-seq'; cluster: string }
  | { type: 'object'; cluster: string; objectKey: string }
  | { type: 'identity'; cluster: string; id: number }
  | { type: 'cidr-identity'; prefix: string }
  | { type: 'service-ip'; service: string }
  | { type: 'stale'; cluster: string }
  | { type: 'other' };

/** Classifies a key under the mesh prefix. */
export function parseMeshKey(layout: KeyLayout, key: string): ParsedKey {
  const cidr = `${layout.mesh}cidr-identities/by-prefix/`;
  if (key.startsWith(cidr))
    return { type: 'cidr-identity', prefix: key.slice(cidr.length).replace('_', '/') };
  const svc = `${layout.mesh}service-ips/by-name/`;
  if (key.startsWith(svc)) return { type: 'service-ip', service: key.slice(svc.length) };
  if (!key.startsWith(`${layout.mesh}clusters/`)) return { type: 'other' };
  const rest = key.slice(`${layout.mesh}clusters/`.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { type: 'other' };
  const cluster = rest.slice(0, slash);
  const tail = rest.slice(slash + 1);
  if (tail === 'info') return { type: 'cluster-info', cluster };
  if (tail === 'member') return { type: 'member', cluster };
  if (tail === 'stale') return { type: 'stale', cluster };
  if (tail === 'source-seq') return { type: 'source-seq', cluster };
  if (tail.startsWith('objects/')) return { type: 'object', cluster, objectKey: tail.slice(8) };
  if (tail.startsWith('identities/by-id/')) {
    return { type: 'identity', cluster, id: Number(tail.slice('identities/by-id/'.length)) };
  }
  return { type: 'other' };
}
