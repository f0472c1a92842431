import type { PolicyKind, PolicyObject } from '../../common/index.js';
import {
  clusterIdentity,
  defaultLabelFilter,
  identityLabels,
  labelsHash,
} from '../../controlplane/identity/index.js';
import type { EndpointInfo, IdentityInfo, TraceResult } from '../../controlplane/policy/index.js';
import { compilePolicies, trace } from '../../controlplane/policy/index.js';

export interface PodSpec {
  cluster?: string;
  ns: string;
  name: string;
  labels?: Record<string, string>;
  ip: string;
  sa?: string;
  ports?: { name: string; port: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }[];
}

const CLUSTER_IDS: Record<string, number> = { eu: 1, us: 2, ap: 3 };

/** A small mesh: pods with identities derived as the control plane does (one per distinct label set). */
export function mesh(pods: PodSpec[], nsLabels: Record<string, Record<string, string>> = {}) {
  const identities = new Map<string, IdentityInfo>();
  const counters = new Map<string, number>();
  const endpoints: EndpointInfo[] = [];
  for (const p of pods) {
    const cluster = p.cluster ?? 'eu';
    const labels = identityLabels(
      {
        cluster,
        namespace: p.ns,
        podLabels: p.labels ?? {},
        namespaceLabels: { ...(nsLabels[p.ns] ?? {}), 'kubernetes.io/metadata.name': p.ns },
        serviceAccount: p.sa ?? 'default',
      },
      defaultLabelFilter(),
    );
    const h = `${cluster}/${labelsHash(labels)}`;
    let id = identities.get(h);
    if (id === undefined) {
      const n = (counters.get(cluster) ?? 255) + 1;
      counters.set(cluster, n);
      id = { id: clusterIdentity(CLUSTER_IDS[cluster]!, n), cluster, labels };
      identities.set(h, id);
    }
    endpoints.push({
      cluster,
      namespace: p.ns,
      name: p.name,
      identity: id.id,
      ips: [p.ip],
      namedPorts: (p.ports ?? []).map((x) => ({
        name: x.name,
        port: x.port,
        protocol: x.protocol ?? 'TCP',
      })),
    });
  }
  return { identities: [...identities.values()], endpoints };
}

export function policy(
  kind: PolicyKind,
  name: string,
  spec: unknown,
  opts: { cluster?: string; namespace?: string; annotations?: Record<string, string> } = {},
): PolicyObject {
  const p: PolicyObject = {
    kind,
    cluster: opts.cluster ?? 'eu',
    namespace: kind === 'CiliumClusterwideNetworkPolicy' ? '' : (opts.namespace ?? 'default'),
    name,
    labels: {},
    spec,
  };
  if (opts.annotations !== undefined) p.annotations = opts.annotations;
  return p;
}

export const np = (name: string, spec: unknown, opts?: Parameters<typeof policy>[3]) =>
  policy('NetworkPolicy', name, spec, opts);
export const cnp = (name: string, spec: unknown, opts?: Parameters<typeof policy>[3]) =>
  policy('CiliumNetworkPolicy', name, spec, opts);
export const ccnp = (name: string, spec: unknown, opts?: Parameters<typeof policy>[3]) =>
  policy('CiliumClusterwideNetworkPolicy', name, spec, opts);

const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

/** Compiles and answers probes "from → to:port/proto" (names are cluster/ns/name or ns/name in eu). */
export function world(
  policies: PolicyObject[],
  pods: PodSpec[],
  opts: {
    nsLabels?: Record<string, Record<string, string>>;
    cidr?: (p: string) => number | undefined;
  } = {},
) {
  const m = mesh(pods, opts.nsLabels);
  const cidrIdentity = opts.cidr ?? (() => undefined);
  const compiled = compilePolicies(policies, m, { cidrIdentity });
  if (compiled.errors.length > 0)
    throw new Error(compiled.errors.map((e) => `${e.field}: ${e.message}`).join('\n'));
  const full = (n: string) => (n.split('/').length === 2 ? `eu/${n}` : n);
  const probe = (
    from: string,
    to: string,
    port: number,
    proto: keyof typeof PROTO = 'TCP',
  ): TraceResult => {
    const r = trace(
      compiled.engine,
      { from: full(from), to: to.includes('/') ? full(to) : to, port, protocol: PROTO[proto] },
      cidrIdentity,
    );
    if ('error' in r) throw new Error(r.error);
    return r;
  };
  const allowed = (from: string, to: string, port: number, proto: keyof typeof PROTO = 'TCP') =>
    probe(from, to, port, proto).allowed;
  return {
    ...compiled,
    mesh: m,
    probe,
    allowed,
    result: (n: string) => compiled.engine.result(full(n)),
  };
}
