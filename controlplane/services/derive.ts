import type { PodObject, ServiceObject, ServicePortSpec } from '../../common/index.js';
import type {
  ClusterObjects,
  ClusterObjectsByName,
  DerivedServices,
  ExportCondition,
  ExportStatus,
  ImportEndpoints,
  ImportPort,
  ServiceImportView,
} from './types.js';

interface Candidate {
  cluster: ClusterObjects;
  service: ServiceObject | undefined;
  createdAt: string;
  status: ExportStatus;
}

const key = (ns: string, name: string): string => `${ns}/${name}`;
const portId = (p: { protocol: string; port: number }): string => `${p.protocol}/${p.port}`;

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * Ready pods of one cluster indexed by namespace and by each label, so a
 * Service's selector looks at the pods carrying its rarest label only.
 */
export class PodIndex {
  /** namespace\nkey=value -> pods (by cluster/namespace/name) */
  readonly #byLabel = new Map<string, Map<string, PodObject>>();
  readonly #byNamespace = new Map<string, Map<string, PodObject>>();

  constructor(pods: readonly PodObject[] = []) {
    for (const p of pods) this.add(p);
  }

  /** Indexes a pod if it can serve (ready, not hostNetwork). */
  add(p: PodObject): void {
    if (!p.ready || p.hostNetwork) return;
    const id = `${p.namespace}/${p.name}`;
    put(this.#byNamespace, p.namespace, id, p);
    for (const [k, v] of Object.entries(p.labels))
      put(this.#byLabel, `${p.namespace}\n${k}=${v}`, id, p);
  }

  remove(p: PodObject): void {
    const id = `${p.namespace}/${p.name}`;
    this.#byNamespace.get(p.namespace)?.delete(id);
    for (const [k, v] of Object.entries(p.labels))
      this.#byLabel.get(`${p.namespace}\n${k}=${v}`)?.delete(id);
  }

  select(namespace: string, selector: Record<string, string>): PodObject[] {
    let smallest = this.#byNamespace.get(namespace);
    for (const [k, v] of Object.entries(selector)) {
      const list = this.#byLabel.get(`${namespace}\n${k}=${v}`);
      if (!list) return [];
      if (!smallest || list.size < smallest.size) smallest = list;
    }
    return [...(smallest?.values() ?? [])].filter((p) => selects(selector, p.labels));
  }
}

function put<V>(m: Map<string, Map<string, V>>, k: string, id: string, v: V): void {
  let inner = m.get(k);
  if (!inner) m.set(k, (inner = new Map<string, V>()));
  inner.set(id, v);
}

/** A cluster's Services and ServiceExports by namespace/name. */
export function indexByName(c: Pick<ClusterObjects, 'services' | 'exports'>): ClusterObjectsByName {
  return {
    services: new Map(c.services.map((s) => [key(s.namespace, s.name), s])),
    exports: new Map(c.exports.map((e) => [key(e.namespace, e.name), e])),
  };
}

/** The pod's port a Service port targets: by container port name, or by number. */
function targetPort(sp: ServicePortSpec, pod: PodObject): number | undefined {
  if (typeof sp.targetPort === 'number') return sp.targetPort;
  return pod.ports.find((p) => p.name === sp.targetPort && p.protocol === sp.protocol)?.port;
}

/**
 * ServiceExports → ServiceImports across member clusters, as the
 * Multi-Cluster Services API specifies. Pure.
 * - An export is valid when its cluster has a Service of that name that is
 *   not ExternalName.
 * - Global properties (type, session affinity, each named port's number and
 *   protocol) come from the oldest valid export (creationTimestamp, else when
 *   first recorded; ties by cluster name). Exports that disagree get
 *   Conflict=True naming what; the import itself follows the oldest, so a
 *   conflict clearing does not change it.
 * - Ports are the union, merged by name, then by (protocol, port); a port
 *   whose export disagrees is served only by clusters whose Service has it.
 * - Endpoints: ready pods the Service selects, per live source cluster.
 * - Every member cluster that has the namespace imports it.
 */
export function deriveServices(
  clusters: readonly ClusterObjects[],
  clustersetIp: (namespace: string, name: string) => string | undefined,
  opts: {
    /** only these imports (namespace/name); default all */
    only?: ReadonlySet<string>;
    /** a kept index of each cluster's pods (default: built from `pods`) */
    podIndex?: (cluster: string) => PodIndex | undefined;
  } = {},
): DerivedServices {
  const byName = new Map<string, Candidate[]>();
  const exports: ExportStatus[] = [];
  const podIndex = new Map<string, PodIndex>();
  const indexOf = (c: ClusterObjects): PodIndex => {
    let i = podIndex.get(c.name) ?? opts.podIndex?.(c.name);
    if (!i) i = new PodIndex(c.pods);
    podIndex.set(c.name, i);
    return i;
  };
  for (const c of clusters) {
    const index = c.byName ?? indexByName(c);
    const exportsOfCluster = opts.only
      ? [...opts.only].flatMap((k) => index.exports.get(k) ?? [])
      : c.exports;
    for (const e of exportsOfCluster) {
      const service = index.services.get(key(e.namespace, e.name));
      const createdAt = e.creationTimestamp ?? e.recordedAt ?? '';
      const conditions: ExportCondition[] = [];
      let valid = true;
      if (!service) {
        valid = false;
        conditions.push({
          type: 'Valid',
          status: 'False',
          reason: 'NoService',
          message: `no Service ${e.namespace}/${e.name} in cluster ${c.name}`,
        });
      } else if (service.type === 'ExternalName') {
        valid = false;
        conditions.push({
          type: 'Valid',
          status: 'False',
          reason: 'InvalidServiceType',
          message: 'ExternalName services cannot be exported',
        });
      } else {
        conditions.push({
          type: 'Valid',
          status: 'True',
          reason: 'Valid',
          message: 'the service is exported',
        });
      }
      const status: ExportStatus = {
        cluster: c.name,
        namespace: e.namespace,
        name: e.name,
        createdAt,
        conditions,
      };
      exports.push(status);
      if (!valid) continue;
      const list = byName.get(key(e.namespace, e.name)) ?? [];
      list.push({ cluster: c, service, createdAt, status });
      byName.set(key(e.namespace, e.name), list);
    }
  }

  const imports: ServiceImportView[] = [];
  for (const [k, candidates] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [namespace, name] = k.split('/') as [string, string];
    candidates.sort((a, b) =>
      a.createdAt !== b.createdAt
        ? a.createdAt < b.createdAt
          ? -1
          : 1
        : a.cluster.name < b.cluster.name
          ? -1
          : 1,
    );
    const oldest = candidates[0]!;
    const oldSvc = oldest.service!;
    const type = oldSvc.headless ? ('Headless' as const) : ('ClusterSetIP' as const);

    // Ports: the union, merged by name, then by (protocol, port); the oldest export wins a disagreement.
    const ports: ImportPort[] = [];
    const byPortName = new Map<string, ImportPort>();
    const byPortId = new Map<string, ImportPort>();
    for (const cand of candidates) {
      for (const sp of cand.service!.ports) {
        const existing = sp.name !== '' ? byPortName.get(sp.name) : byPortId.get(portId(sp));
        if (existing) continue;
        const p = { name: sp.name, port: sp.port, protocol: sp.protocol };
        ports.push(p);
        if (sp.name !== '') byPortName.set(sp.name, p);
        byPortId.set(portId(sp), p);
      }
    }
    ports.sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : a.port - b.port));

    const reasons = new Map<Candidate, string[]>();
    const conflict = (c: Candidate, why: string): void => {
      reasons.set(c, [...(reasons.get(c) ?? []), why]);
    };
    for (const cand of candidates.slice(1)) {
      const svc = cand.service!;
      if (svc.headless !== oldSvc.headless) {
        conflict(
          cand,
          `TypeConflict: ${svc.headless ? 'Headless' : 'ClusterSetIP'} here, ${type} in the oldest export (cluster ${oldest.cluster.name})`,
        );
      }
      if (svc.sessionAffinity !== oldSvc.sessionAffinity) {
        conflict(
          cand,
          `SessionAffinityConflict: ${svc.sessionAffinity} here, ${oldSvc.sessionAffinity} in the oldest export (cluster ${oldest.cluster.name})`,
        );
      }
      for (const sp of svc.ports) {
        const chosen = sp.name !== '' ? byPortName.get(sp.name) : byPortId.get(portId(sp));
        if (chosen && (chosen.port !== sp.port || chosen.protocol !== sp.protocol)) {
          conflict(
            cand,
            `PortConflict: port ${sp.name || portId(sp)} is ${portId(sp)} here, ${portId(chosen)} in the import`,
          );
        }
      }
    }
    // Conflict is reported on every export involved, the oldest included.
    const involved = reasons.size > 0;
    for (const cand of candidates) {
      const why = reasons.get(cand) ?? [];
      if (involved && cand === oldest) {
        cand.status.conditions.push({
          type: 'Conflict',
          status: 'True',
          reason: 'Conflict',
          message: `other exports disagree: ${[...reasons.keys()].map((c) => c.cluster.name).join(', ')}`,
        });
      } else if (why.length > 0) {
        const reason = why[0]!.split(':')[0]!;
        cand.status.conditions.push({
          type: 'Conflict',
          status: 'True',
          reason,
          message: why.join('; '),
        });
      } else {
        cand.status.conditions.push({
          type: 'Conflict',
          status: 'False',
          reason: 'NoConflicts',
          message: 'no conflicts',
        });
      }
    }

    const endpoints: ImportEndpoints[] = [];
    for (const cand of candidates) {
      if (!cand.cluster.live) continue;
      const svc = cand.service!;
      if (svc.selector === null) continue; // a selectorless Service's endpoints are managed elsewhere
      const pods = indexOf(cand.cluster).select(namespace, svc.selector);
      const epPorts: ImportEndpoints['ports'] = [];
      for (const sp of svc.ports) {
        const chosen = sp.name !== '' ? byPortName.get(sp.name) : byPortId.get(portId(sp));
        // A conflicting port is served only by clusters whose Service has it as imported.
        if (!chosen || chosen.port !== sp.port || chosen.protocol !== sp.protocol) continue;
        const targets = new Set(pods.map((p) => targetPort(sp, p)).filter((t) => t !== undefined));
        if (targets.size !== 1) continue; // pods disagree on a named target port, or none resolves it
        epPorts.push({ name: sp.name, port: [...targets][0]!, protocol: sp.protocol });
      }
      const addresses = pods.flatMap((p) => p.ips).sort();
      if (addresses.length === 0) continue;
      endpoints.push({
        labels: {
          'multicluster.kubernetes.io/service-name': name,
          'multicluster.kubernetes.io/source-cluster': cand.cluster.name,
        },
        cluster: cand.cluster.name,
        ports: epPorts,
        addresses,
      });
    }
    const ip = type === 'ClusterSetIP' ? clustersetIp(namespace, name) : undefined;
    imports.push({
      namespace,
      name,
      type,
      sessionAffinity: oldSvc.sessionAffinity,
      ports,
      ips: ip ? [ip] : [],
      clusters: candidates.map((c) => c.cluster.name).sort(),
      endpoints: endpoints.sort((a, b) => (a.cluster < b.cluster ? -1 : 1)),
      importedInto: clusters
        .filter((c) => c.namespaces.has(namespace))
        .map((c) => c.name)
        .sort(),
    });
  }
  return {
    imports,
    exports: exports.sort((a, b) =>
      key(a.namespace, a.name) + a.cluster < key(b.namespace, b.name) + b.cluster ? -1 : 1,
    ),
  };
}
