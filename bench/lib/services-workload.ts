/**
 * Seeded workload for the services benchmark: every cluster has the same
 * namespaces and exports the same Services (selector `app: <service>`, one
 * named port whose targetPort names the pods' container port), each backed by
 * a fixed number of ready pods per cluster. The churn replaces a fraction of
 * the pods (new name, new IP, same labels) in small change sets, round-robin
 * over the clusters. Change sets are built as a cluster source would publish
 * them (`meshplane.events.<cluster>`, delta, not full).
 */
import type {
  ChangeSetEvent,
  ClusterSpec,
  MeshObject,
  PodObject,
  ServiceExportObject,
  ServiceObject,
} from '../../common/index.js';
import { seededRandom } from './workload.js';

export interface ServicesShape {
  /** Services exported from every cluster */
  services: number;
  clusters: number;
  nodesPerCluster: number;
  namespaces: number;
  /** ready pods per Service per cluster */
  endpointsPerService: number;
  /** fraction of all endpoints replaced during the churn */
  churnFraction: number;
  /** pods replaced per churn change set (all of one cluster) */
  podsPerChangeSet: number;
  /** Services per initial change set (one per cluster per round; bounded by etcd's --max-txn-ops) */
  servicesPerRound: number;
  seed: number;
}

export const DEFAULT_SERVICES_SHAPE: ServicesShape = {
  services: 2_000,
  clusters: 3,
  nodesPerCluster: 4,
  namespaces: 20,
  endpointsPerService: 10,
  churnFraction: 0.1,
  podsPerChangeSet: 5,
  servicesPerRound: 500,
  seed: 20_250_715,
};

/** One churned endpoint: its import, the source cluster, the address leaving and the one arriving. */
export interface ChurnedEndpoint {
  cluster: string;
  namespace: string;
  service: string;
  oldIp: string;
  newIp: string;
}

export interface ChurnChangeSet {
  event: ChangeSetEvent;
  endpoints: ChurnedEndpoint[];
}

export interface ServicesWorkload {
  clusters: ClusterSpec[];
  /** initial state: per round, one change set per cluster */
  rounds: ChangeSetEvent[][];
  /** `namespace/name` of the Services each round adds, in round order */
  servicesByRound: string[][];
  churn: ChurnChangeSet[];
  pods: number;
}

const CLUSTER_NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

/** The `i`-th host address of 10.<id>.0.0/16, skipping .0 and .255 of each /24. */
function podIp(clusterId: number, i: number): string {
  return `10.${clusterId}.${Math.floor(i / 254)}.${(i % 254) + 1}`;
}

export function generateServicesWorkload(
  shape: ServicesShape = DEFAULT_SERVICES_SHAPE,
): ServicesWorkload {
  if (shape.clusters < 1 || shape.clusters > CLUSTER_NAMES.length)
    throw new Error(`clusters must be 1..${CLUSTER_NAMES.length}`);
  if (shape.services * (shape.endpointsPerService * (1 + shape.churnFraction)) > 254 * 255)
    throw new Error('too many pods for one /16 per cluster');
  const rnd = seededRandom(shape.seed);
  const namespaces = Array.from(
    { length: shape.namespaces },
    (_, n) => `ns-${String(n).padStart(2, '0')}`,
  );
  const services = Array.from({ length: shape.services }, (_, k) => ({
    namespace: namespaces[k % namespaces.length]!,
    name: `svc-${String(k).padStart(4, '0')}`,
  }));
  const clusters: ClusterSpec[] = [];
  const rounds: ChangeSetEvent[][] = [];
  const perClusterChurn: ChurnChangeSet[][] = [];
  let pods = 0;
  for (let c = 0; c < shape.clusters; c++) {
    const id = c + 1;
    const name = CLUSTER_NAMES[c]!;
    const spec: ClusterSpec = {
      name,
      id,
      nodes: Array.from({ length: shape.nodesPerCluster }, (_, n) => `${name}-${n + 1}`),
      podCIDR: `10.${id}.0.0/16`,
    };
    clusters.push(spec);
    let next = 0;
    const newPod = (svc: { namespace: string; name: string }): PodObject => {
      const i = next++;
      return {
        kind: 'Pod',
        cluster: name,
        namespace: svc.namespace,
        name: `${svc.name}-${i.toString(36)}`,
        // pod-template-hash is per Service (one ReplicaSet), so a replacement has the same labels
        labels: { app: svc.name, 'pod-template-hash': `h${svc.name.slice(-3)}` },
        ips: [podIp(id, i)],
        node: spec.nodes[Math.floor(rnd() * spec.nodes.length)]!,
        serviceAccount: 'default',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        ready: true,
        hostNetwork: false,
      };
    };
    const all: PodObject[] = [];
    for (let r = 0; r * shape.servicesPerRound < services.length; r++) {
      const upserts: MeshObject[] = [];
      if (r === 0)
        for (const ns of namespaces)
          upserts.push({ kind: 'Namespace', cluster: name, namespace: '', name: ns, labels: {} });
      for (const svc of services.slice(
        r * shape.servicesPerRound,
        (r + 1) * shape.servicesPerRound,
      )) {
        const service: ServiceObject = {
          kind: 'Service',
          cluster: name,
          namespace: svc.namespace,
          name: svc.name,
          labels: {},
          type: 'ClusterIP',
          headless: false,
          selector: { app: svc.name },
          ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'http' }],
          sessionAffinity: 'None',
        };
        const exp: ServiceExportObject = {
          kind: 'ServiceExport',
          cluster: name,
          namespace: svc.namespace,
          name: svc.name,
          labels: {},
        };
        upserts.push(service, exp);
        for (let e = 0; e < shape.endpointsPerService; e++) {
          const p = newPod(svc);
          all.push(p);
          upserts.push(p);
        }
      }
      (rounds[r] ??= []).push(event(spec, upserts, []));
    }
    pods += all.length;

    // Churn: a seeded sample of this cluster's pods, in a seeded order.
    const order = [...all];
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const chosen = order.slice(0, Math.round(all.length * shape.churnFraction));
    const sets: ChurnChangeSet[] = [];
    for (let i = 0; i < chosen.length; i += shape.podsPerChangeSet) {
      const upserts: MeshObject[] = [];
      const deletes: ChangeSetEvent['deletes'] = [];
      const endpoints: ChurnedEndpoint[] = [];
      for (const old of chosen.slice(i, i + shape.podsPerChangeSet)) {
        const svc = { namespace: old.namespace, name: old.labels.app! };
        const repl = newPod(svc);
        upserts.push(repl);
        deletes.push({ kind: 'Pod', namespace: old.namespace, name: old.name });
        endpoints.push({
          cluster: name,
          namespace: svc.namespace,
          service: svc.name,
          oldIp: old.ips[0]!,
          newIp: repl.ips[0]!,
        });
      }
      sets.push({ event: event(spec, upserts, deletes), endpoints });
    }
    perClusterChurn.push(sets);
  }
  // Round-robin over the clusters.
  const churn: ChurnChangeSet[] = [];
  const longest = Math.max(...perClusterChurn.map((s) => s.length));
  for (let i = 0; i < longest; i++)
    for (const sets of perClusterChurn) if (i < sets.length) churn.push(sets[i]!);
  const servicesByRound = rounds.map((_, r) =>
    services
      .slice(r * shape.servicesPerRound, (r + 1) * shape.servicesPerRound)
      .map((s) => `${s.namespace}/${s.name}`),
  );
  return { clusters, rounds, servicesByRound, churn, pods };
}

function event(
  cluster: ClusterSpec,
  upserts: MeshObject[],
  deletes: ChangeSetEvent['deletes'],
): ChangeSetEvent {
  return {
    apiVersion: 'meshplane/v1',
    cluster,
    full: false,
    upserts,
    deletes,
    origin: 'bench:services',
  };
}
