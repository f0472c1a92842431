/**
 * Workload of the propagation benchmark: clusters whose nodes each run a few
 * pods, and the changes the scenarios publish, as a cluster source would
 * (delta change sets on `meshplane.events.<cluster>`).
 *
 * - Every node runs `podsPerNode` pods in namespace `bench`, labelled
 *   `app: app-<j>` (j = the pod's index on its node), so each cluster has
 *   `podsPerNode` identities plus one: the first pod on the first
 *   `pctNodes` nodes of the first cluster also carries `tier: pct`.
 * - (a) all nodes: a new pod (existing labels) on some node — one ipcache
 *   shard changes, and every node of the mesh gets it.
 * - (b) 1% of nodes: NetworkPolicy `pct` in the first cluster selecting
 *   `tier: pct`, allowing ingress from `app: app-1` on a port that changes
 *   with every step — only the selected endpoints' resources change.
 * Pure and deterministic: the same shape gives the same change sets.
 */
import type {
  ChangeSetEvent,
  ClusterSpec,
  MeshObject,
  PodObject,
  PolicyObject,
} from '../../common/index.js';

export interface PropagationShape {
  /** node agents over all clusters */
  agents: number;
  clusters: number;
  podsPerNode: number;
  /** nodes whose endpoints scenario (b) changes (default: 1% of agents, at least 1) */
  pctNodes: number;
}

const CLUSTER_NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
export const NAMESPACE = 'bench';

export function propagationShape(agents: number, podsPerNode = 5, clusters = 3): PropagationShape {
  if (clusters < 1 || clusters > CLUSTER_NAMES.length)
    throw new Error(`clusters must be 1..${CLUSTER_NAMES.length}`);
  if (agents < clusters) throw new Error(`need at least one agent per cluster (${clusters})`);
  return {
    agents,
    clusters,
    podsPerNode,
    pctNodes: Math.max(1, Math.min(Math.round(agents / 100), Math.floor(agents / clusters))),
  };
}

/** Node names of cluster `c` when the mesh has `agents` agents: agents spread round-robin. */
export function clusterSpecs(shape: PropagationShape): ClusterSpec[] {
  return Array.from({ length: shape.clusters }, (_, c) => {
    const id = c + 1;
    const name = CLUSTER_NAMES[c]!;
    const count =
      Math.floor(shape.agents / shape.clusters) + (c < shape.agents % shape.clusters ? 1 : 0);
    const nodes = Array.from({ length: count }, (_, n) => `${name}-${n + 1}`);
    return { name, id, nodes, podCIDR: `10.${id}.0.0/16` };
  });
}

/** The `i`-th host address of 10.<id>.0.0/16, skipping .0 and .255 of each /24. */
export function podIp(clusterId: number, i: number): string {
  if (i >= 254 * 256) throw new Error(`pod index ${i} does not fit 10.${clusterId}.0.0/16`);
  return `10.${clusterId}.${Math.floor(i / 254)}.${(i % 254) + 1}`;
}

function pod(
  cluster: ClusterSpec,
  name: string,
  node: string,
  ip: string,
  labels: Record<string, string>,
): PodObject {
  return {
    kind: 'Pod',
    cluster: cluster.name,
    namespace: NAMESPACE,
    name,
    labels,
    ips: [ip],
    node,
    serviceAccount: 'default',
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ready: true,
    hostNetwork: false,
  };
}

export function changeSet(
  cluster: ClusterSpec,
  upserts: MeshObject[],
  deletes: ChangeSetEvent['deletes'] = [],
): ChangeSetEvent {
  return {
    apiVersion: 'meshplane/v1',
    cluster,
    full: false,
    upserts,
    deletes,
    origin: 'bench:propagation',
  };
}

/**
 * The pods of nodes `from..` of one cluster (node index i, pod j), as one
 * change set that also carries the cluster's (possibly longer) node list.
 */
export function podsOfNodes(
  shape: PropagationShape,
  cluster: ClusterSpec,
  clusterIndex: number,
  from = 0,
): ChangeSetEvent {
  const upserts: MeshObject[] = [];
  if (from === 0)
    upserts.push({
      kind: 'Namespace',
      cluster: cluster.name,
      namespace: '',
      name: NAMESPACE,
      labels: {},
    });
  for (let i = from; i < cluster.nodes.length; i++) {
    const node = cluster.nodes[i]!;
    for (let j = 0; j < shape.podsPerNode; j++) {
      const labels: Record<string, string> = { app: `app-${j}` };
      if (clusterIndex === 0 && j === 0 && i < shape.pctNodes) labels.tier = 'pct';
      upserts.push(
        pod(cluster, `w-${i + 1}-${j}`, node, podIp(cluster.id, i * shape.podsPerNode + j), labels),
      );
    }
  }
  return changeSet(cluster, upserts);
}

/** Address space above the initial pods, for the pods scenario (a) and (c) add. */
function extraIp(shape: PropagationShape, cluster: ClusterSpec, k: number): string {
  // Past every node's pods even after the mesh grows 8-fold.
  return podIp(cluster.id, 8 * cluster.nodes.length * shape.podsPerNode + 1000 + k);
}

/**
 * Scenario (a)/(c) step `k`: a new pod (labels of an existing identity) in
 * cluster k mod clusters, on one of its nodes. Changes one ipcache shard.
 */
export function newPodChange(
  shape: PropagationShape,
  clusters: readonly ClusterSpec[],
  k: number,
): ChangeSetEvent {
  const cluster = clusters[k % clusters.length]!;
  const node = cluster.nodes[Math.floor(k / clusters.length) % cluster.nodes.length]!;
  return changeSet(cluster, [
    pod(cluster, `extra-${k}`, node, extraIp(shape, cluster, k), { app: 'app-0' }),
  ]);
}

/** Scenario (b) step `k`: policy `pct` (first cluster) with a port of its own. */
export function pctPolicyChange(clusters: readonly ClusterSpec[], k: number): ChangeSetEvent {
  const cluster = clusters[0]!;
  const policy: PolicyObject = {
    kind: 'NetworkPolicy',
    cluster: cluster.name,
    namespace: NAMESPACE,
    name: 'pct',
    labels: {},
    spec: {
      podSelector: { matchLabels: { tier: 'pct' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ podSelector: { matchLabels: { app: 'app-1' } } }],
          ports: [{ port: 10_000 + (k % 50_000), protocol: 'TCP' }],
        },
      ],
    },
  };
  return changeSet(cluster, [policy]);
}
