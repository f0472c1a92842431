/**
 * Seeded pod workload for the identity-churn benchmark: clusters with a few
 * nodes and namespaces, and Deployments of 1..20 replicas whose pods are
 * written as manifest files of ~50 pods, as an API-server listing would show
 * them. Pods of one Deployment share their security-relevant labels (app,
 * version, namespace, service account) and differ only in name, node, IP and
 * the excluded `pod-template-hash`, so many pods share one identity.
 */

/** mulberry32: small, fast, good enough for workload shapes; same seed, same workload. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface WorkloadShape {
  /** total pods over all clusters */
  pods: number;
  clusters: number;
  nodesPerCluster: number;
  namespacesPerCluster: number;
  /** replicas per Deployment, uniform in [min, max] */
  replicas: { min: number; max: number };
  /** distinct `version` label values a Deployment may carry */
  versions: number;
  /** pods per manifest file (the last file of a cluster may hold fewer) */
  podsPerFile: number;
  seed: number;
}

export const DEFAULT_SHAPE: WorkloadShape = {
  pods: 10_000,
  clusters: 3,
  nodesPerCluster: 4,
  namespacesPerCluster: 5,
  replicas: { min: 1, max: 20 },
  versions: 3,
  podsPerFile: 50,
  seed: 20_240_601,
};

export interface GeneratedCluster {
  name: string;
  id: number;
  nodes: string[];
  /** cluster.yaml */
  clusterYaml: string;
  /** namespaces.yaml (Namespaces and ServiceAccounts), written before the run starts */
  namespacesYaml: string;
}

export interface GeneratedPod {
  cluster: string;
  namespace: string;
  name: string;
  ip: string;
  /** the Deployment it belongs to (`<cluster>/<namespace>/<app>-<version>`) */
  deployment: string;
}

export interface GeneratedFile {
  cluster: string;
  /** relative to the cluster folder */
  path: string;
  text: string;
  pods: GeneratedPod[];
}

export interface Workload {
  clusters: GeneratedCluster[];
  /** in the order they are written: round-robin over clusters */
  files: GeneratedFile[];
  deployments: number;
}

const CLUSTER_NAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];
const TEAMS = ['payments', 'web', 'data', 'platform', 'risk', 'search', 'ml', 'ops'];
const APP_WORDS = [
  'api',
  'cart',
  'checkout',
  'catalog',
  'auth',
  'search',
  'ledger',
  'mailer',
  'queue',
  'render',
  'report',
  'billing',
  'fraud',
  'ingest',
  'export',
  'pricing',
];
const HASH_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function pick<T>(rnd: () => number, items: readonly T[]): T {
  return items[Math.floor(rnd() * items.length)]!;
}

function token(rnd: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += pick(rnd, [...HASH_ALPHABET]);
  return s;
}

/** The `i`-th host address of 10.<id>.0.0/16, skipping .0 and .255 of each /24. */
function podIp(clusterId: number, i: number): string {
  const third = Math.floor(i / 254);
  const fourth = (i % 254) + 1;
  return `10.${clusterId}.${third}.${fourth}`;
}

export function generateWorkload(shape: WorkloadShape = DEFAULT_SHAPE): Workload {
  if (shape.clusters < 1 || shape.clusters > CLUSTER_NAMES.length)
    throw new Error(`clusters must be 1..${CLUSTER_NAMES.length}`);
  const rnd = seededRandom(shape.seed);
  const clusters: GeneratedCluster[] = [];
  const perCluster: GeneratedFile[][] = [];
  let deployments = 0;
  for (let c = 0; c < shape.clusters; c++) {
    const id = c + 1;
    const name = CLUSTER_NAMES[c]!;
    const nodes = Array.from({ length: shape.nodesPerCluster }, (_, n) => `${name}-${n + 1}`);
    const namespaces = Array.from({ length: shape.namespacesPerCluster }, (_, n) => ({
      name: `ns-${n + 1}`,
      team: TEAMS[n % TEAMS.length]!,
    }));
    clusters.push({
      name,
      id,
      nodes,
      clusterYaml: `name: ${name}\nid: ${id}\nnodes: [${nodes.join(', ')}]\n`,
      namespacesYaml: namespaces
        .map(
          (ns) =>
            `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns.name}\n  labels:\n    team: ${ns.team}\n` +
            `---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: workload\n  namespace: ${ns.name}\n`,
        )
        .join('---\n'),
    });

    // This cluster's share of the pods, as Deployments of random size.
    const target =
      Math.floor(shape.pods / shape.clusters) + (c < shape.pods % shape.clusters ? 1 : 0);
    const pods: (GeneratedPod & { app: string; version: string; hash: string; node: string })[] =
      [];
    const seen = new Set<string>();
    while (pods.length < target) {
      const ns = pick(rnd, namespaces).name;
      let app = '';
      let version = '';
      for (let tries = 0; tries < 100; tries++) {
        app = `${pick(rnd, APP_WORDS)}-${token(rnd, 3)}`;
        version = `v${1 + Math.floor(rnd() * shape.versions)}`;
        if (!seen.has(`${ns}/${app}/${version}`)) break;
      }
      seen.add(`${ns}/${app}/${version}`);
      const span = shape.replicas.max - shape.replicas.min + 1;
      const replicas = Math.min(
        target - pods.length,
        shape.replicas.min + Math.floor(rnd() * span),
      );
      const hash = token(rnd, 10);
      deployments += 1;
      for (let r = 0; r < replicas; r++) {
        const i = pods.length;
        pods.push({
          cluster: name,
          namespace: ns,
          name: `${app}-${hash}-${token(rnd, 5)}`,
          ip: podIp(id, i),
          deployment: `${name}/${ns}/${app}-${version}`,
          app,
          version,
          hash,
          node: nodes[Math.floor(rnd() * nodes.length)]!,
        });
      }
    }

    const files: GeneratedFile[] = [];
    for (let start = 0; start < pods.length; start += shape.podsPerFile) {
      const chunk = pods.slice(start, start + shape.podsPerFile);
      const text = chunk
        .map(
          (p) =>
            `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${p.name}\n  namespace: ${p.namespace}\n` +
            `  labels:\n    app: ${p.app}\n    version: ${p.version}\n    pod-template-hash: ${p.hash}\n` +
            `spec:\n  serviceAccountName: workload\n  nodeName: ${p.node}\n` +
            `  containers:\n    - name: main\n      image: registry.example.com/${p.app}:${p.version}\n` +
            `      ports:\n        - name: http\n          containerPort: 8080\n` +
            `status:\n  podIP: ${p.ip}\n`,
        )
        .join('---\n');
      files.push({
        cluster: name,
        path: `pods-${String(files.length + 1).padStart(4, '0')}.yaml`,
        text,
        pods: chunk.map(({ cluster, namespace, name: podName, ip, deployment }) => ({
          cluster,
          namespace,
          name: podName,
          ip,
          deployment,
        })),
      });
    }
    perCluster.push(files);
  }

  // Interleave: file 1 of every cluster, then file 2, ...
  const files: GeneratedFile[] = [];
  const longest = Math.max(...perCluster.map((f) => f.length));
  for (let i = 0; i < longest; i++) {
    for (const f of perCluster) {
      const file = f[i];
      if (file) files.push(file);
    }
  }
  return { clusters, files, deployments };
}
