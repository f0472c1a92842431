/**
 * The normalized mesh objects a cluster source publishes and the control plane
 * stores in etcd under the cluster's prefix. Kubernetes manifests (or API
 * objects) are converted into these by the cluster source; nothing downstream
 * reads raw Kubernetes objects except policy specs, which are kept as written
 * (validated) for the policy compiler.
 */

export interface ClusterSpec {
  /** DNS label */
  name: string;
  /** 1..255, unique in the mesh */
  id: number;
  /** node names */
  nodes: string[];
  /** default 10.<id>.0.0/16 */
  podCIDR: string;
}

export interface PortSpec {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

interface ObjectBase {
  cluster: string;
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** RFC 3339, from the manifest or API; absent when not given */
  creationTimestamp?: string;
}

export interface NamespaceObject extends ObjectBase {
  kind: 'Namespace';
  /** always '' for namespaces (cluster-scoped objects have no namespace) */
  namespace: '';
}

export interface ServiceAccountObject extends ObjectBase {
  kind: 'ServiceAccount';
}

export interface PodObject extends ObjectBase {
  kind: 'Pod';
  ips: string[];
  node: string;
  serviceAccount: string;
  /** container ports, named or not */
  ports: PortSpec[];
  /** false only when the Ready condition is explicitly False */
  ready: boolean;
  hostNetwork: boolean;
}

export interface ServicePortSpec {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** a number or a container port name */
  targetPort: number | string;
}

export interface ServiceObject extends ObjectBase {
  kind: 'Service';
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  headless: boolean;
  selector: Record<string, string> | null;
  ports: ServicePortSpec[];
  sessionAffinity: 'None' | 'ClientIP';
}

export interface ServiceExportObject extends ObjectBase {
  kind: 'ServiceExport';
}

export type PolicyKind = 'NetworkPolicy' | 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';

export interface PolicyObject extends ObjectBase {
  kind: PolicyKind;
  /** '' for CiliumClusterwideNetworkPolicy */
  namespace: string;
  /** the manifest's spec (or specs) as written, validated by the source */
  spec: unknown;
  /** metadata.annotations; absent when none (e.g. policy.meshplane.io/audit: "true") */
  annotations?: Record<string, string>;
}

export type MeshObject =
  | NamespaceObject
  | ServiceAccountObject
  | PodObject
  | ServiceObject
  | ServiceExportObject
  | PolicyObject;

export type MeshObjectKind = MeshObject['kind'];

export interface ObjectRef {
  kind: MeshObjectKind;
  namespace: string;
  name: string;
}

/** Stable per-cluster key of an object: Kind/namespace/name (namespace '' for cluster-scoped). */
export function objectKey(ref: ObjectRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

export function parseObjectKey(key: string): ObjectRef {
  const [kind, namespace, name] = key.split('/');
  if (kind === undefined || namespace === undefined || name === undefined) {
    throw new Error(`malformed object key ${key}`);
  }
  return { kind: kind as MeshObjectKind, namespace, name };
}

/**
 * One change set, as a cluster source publishes it (JetStream): one message
 * per object kind it names, on `meshplane.events.<cluster>.<kind>`, each
 * message itself a ChangeSetEvent holding that kind's objects, with the
 * change set's id and part number in headers (see change-set-parts.ts); a
 * whole change set in one message on `meshplane.events.<cluster>` is taken
 * too. Committed by the control plane, once every part has arrived, in one
 * etcd transaction or not at all.
 */
export interface ChangeSetEvent {
  apiVersion: 'meshplane/v1';
  cluster: ClusterSpec;
  /**
   * true: `upserts` is the cluster's complete object set; every stored object
   * not in it is deleted (sent when a source starts, so nothing it missed
   * while away survives).
   */
  full: boolean;
  upserts: MeshObject[];
  deletes: ObjectRef[];
  /** who made it: e.g. "manifests:/path/to/eu" */
  origin: string;
  /** trace context (W3C traceparent) of the change, when traced */
  traceparent?: string;
  /**
   * W3C traceparents of further callers whose changes this change set also
   * carries (a source folded several `meshctl apply`s into it): the
   * revision's span links to each (TRACE_LINKS_HEADER)
   */
  traceLinks?: string[];
}

/**
 * Health of a cluster source, published on core NATS subject
 * `meshplane.health.<cluster>` when it changes and every few seconds.
 * Bookkeeping, never a mesh revision.
 */
export interface SourceHealthEvent {
  apiVersion: 'meshplane/v1';
  cluster: string;
  origin: string;
  /** epoch ms on the source's clock, informational only */
  at: number;
  /** the last change set the source refused, with every error; '' when the last one was good */
  lastError: string;
}

export const SUBJECT_EVENTS_PREFIX = 'meshplane.events';
export const SUBJECT_HEALTH_PREFIX = 'meshplane.health';
/** NATS header carrying the W3C trace context of a change set (also in ChangeSetEvent.traceparent) */
export const TRACEPARENT_HEADER = 'traceparent';
/**
 * NATS header with the traceparents (comma-separated) of further callers a
 * change set carries, beyond its `traceparent` (ChangeSetEvent.traceLinks)
 */
export const TRACE_LINKS_HEADER = 'meshplane-trace-links';
/** core NATS: the control plane asks a cluster's source to republish its full state */
export const SUBJECT_RESYNC_PREFIX = 'meshplane.resync';
export const EVENTS_STREAM = 'MESHPLANE_EVENTS';
