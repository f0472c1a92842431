import {
  compareStrings,
  encodeResource,
  resourceKey,
  type EncodedResource,
  type ServiceExportObject,
  type ServiceObject,
} from '../../common/index.js';
import { TYPE_SERVICE } from '../../proto/index.js';
import { BucketedMap } from './bucketed-map.js';
import type { MeshModel, ModelChange } from '../model/index.js';
import {
  PodIndex,
  deriveServices,
  indexByName,
  type ClusterObjects,
  type DerivedServices,
  type ExportStatus,
  type ServiceImportView,
} from '../services/index.js';

export function serviceResourceName(ns: string, name: string): string {
  return `service/${ns}/${name}`;
}

function encode(v: ServiceImportView): EncodedResource {
  const portOf = new Map(
    v.ports.map((p) => [p.name === '' ? `${p.protocol}/${p.port}` : p.name, p]),
  );
  return encodeResource(serviceResourceName(v.namespace, v.name), {
    typeUrl: TYPE_SERVICE,
    value: {
      namespace: v.namespace,
      name: v.name,
      type: v.type,
      ips: v.ips,
      ports: v.ports.map((p) => ({ name: p.name, port: p.port, protocol: p.protocol })),
      backends: v.endpoints.flatMap((e) =>
        e.addresses.map((ip) => ({
          cluster: e.cluster,
          ip,
          // the import's port name → the pod's target port
          ports: e.ports.map((p) => ({
            name: p.name === '' ? (portOf.get(`${p.protocol}/${p.port}`)?.name ?? '') : p.name,
            port: p.port,
            protocol: p.protocol,
          })),
        })),
      ),
    },
  });
}

/**
 * ServiceImports as every node of a cluster sees them, derived from the
 * model's Services, ServiceExports, pods and namespaces. One map of encoded
 * resources per cluster, shared by all its nodes. Incremental: pods are kept
 * indexed across revisions, and a revision that only changes pods recomputes
 * and re-encodes only the imports whose Services select them (before or
 * after). Structural changes (services, exports, namespaces, membership,
 * leases, clusterset IPs) recompute everything. Pure.
 */
export class ServicesState {
  readonly #podIndex = new Map<string, PodIndex>();
  #clusters: ClusterObjects[] = [];
  /** cluster -> the Services a pod's labels may match (to find what a pod change touches) */
  #selectors = new Map<string, SelectorIndex>();
  readonly #imports = new Map<string, ServiceImportView>();
  readonly #exports = new Map<string, ExportStatus[]>();
  readonly #encoded = new Map<string, EncodedResource>();
  #byCluster = new Map<string, BucketedMap<EncodedResource>>();
  #derived: DerivedServices | undefined;
  #initialized = false;

  get derived(): DerivedServices {
    // Keys are namespace/name: sorting them sorts the imports.
    this.#derived ??= {
      imports: [...this.#imports.entries()]
        .sort(([a], [b]) => compareStrings(a, b))
        .map(([, v]) => v),
      exports: [...this.#exports.entries()]
        .sort(([a], [b]) => compareStrings(a, b))
        .flatMap(([, list]) => [...list].sort((a, b) => compareStrings(a.cluster, b.cluster))),
    };
    return this.#derived;
  }

  /** One import by namespace and name, without sorting them all as `derived` does. */
  importOf(namespace: string, name: string): ServiceImportView | undefined {
    return this.#imports.get(`${namespace}/${name}`);
  }

  resources(cluster: string): ReadonlyMap<string, EncodedResource> {
    return this.#byCluster.get(cluster) ?? EMPTY;
  }

  /** Folds a model change in; returns the clusters whose service resources changed. */
  update(model: MeshModel, change: ModelChange): Set<string> {
    for (const [, { before, after }] of change.pods) {
      if (before) this.#index(before.cluster).remove(before);
      if (after) this.#index(after.cluster).add(after);
    }
    const structural = !this.#initialized || change.objects > 0 || change.clusters.size > 0;
    let only: Set<string> | undefined;
    if (structural) {
      this.#initialized = true;
      this.#reloadStructure(model);
    } else {
      only = new Set<string>();
      for (const [, { before, after }] of change.pods) {
        if (before) this.#selectors.get(before.cluster)?.selecting(before, only);
        if (after) this.#selectors.get(after.cluster)?.selecting(after, only);
      }
      if (only.size === 0) return new Set();
    }
    const ips = model.serviceIps();
    const derived = deriveServices(this.#clusters, (ns, name) => ips.get(`${ns}/${name}`), {
      ...(only ? { only } : {}),
      podIndex: (c) => this.#podIndex.get(c),
    });
    const names =
      only ??
      new Set([
        ...this.#imports.keys(),
        ...this.#exports.keys(),
        ...derived.imports.map((i) => `${i.namespace}/${i.name}`),
        ...derived.exports.map((e) => `${e.namespace}/${e.name}`),
      ]);
    const touchedClusters = new Set<string>();
    const nextImports = new Map(derived.imports.map((i) => [`${i.namespace}/${i.name}`, i]));
    const nextExports = new Map<string, ExportStatus[]>();
    for (const e of derived.exports) {
      const k = `${e.namespace}/${e.name}`;
      nextExports.set(k, [...(nextExports.get(k) ?? []), e]);
    }
    const updates = new Map<string, Map<string, EncodedResource | undefined>>();
    const stage = (cluster: string, rkey: string, r: EncodedResource | undefined): void => {
      let m = updates.get(cluster);
      if (!m) updates.set(cluster, (m = new Map<string, EncodedResource | undefined>()));
      m.set(rkey, r);
    };
    for (const name of names) {
      const before = this.#imports.get(name);
      const after = nextImports.get(name);
      const ex = nextExports.get(name);
      if (ex) this.#exports.set(name, ex);
      else this.#exports.delete(name);
      const oldR = this.#encoded.get(name);
      const newR = after ? encode(after) : undefined;
      if (after) {
        this.#imports.set(name, after);
        this.#encoded.set(name, newR!);
      } else {
        this.#imports.delete(name);
        this.#encoded.delete(name);
      }
      const rkey = resourceKey(
        TYPE_SERVICE,
        serviceResourceName(...(name.split('/') as [string, string])),
      );
      const into = new Set(after?.importedInto ?? []);
      for (const c of before?.importedInto ?? []) if (!into.has(c)) stage(c, rkey, undefined);
      for (const c of into) {
        const had = before?.importedInto.includes(c) ? oldR : undefined;
        if (had?.version !== newR?.version) stage(c, rkey, newR);
      }
    }
    // Copy-on-write per cluster (and per bucket within it): snapshots
    // already published keep their map, and a change copies only the
    // buckets it touches, not the cluster's 2,000 imports.
    const next = new Map(this.#byCluster);
    const members = new Set(this.#clusters.map((x) => x.name));
    for (const c of members) if (!next.has(c)) next.set(c, EMPTY);
    for (const c of [...next.keys()])
      if (!members.has(c)) {
        next.delete(c);
        touchedClusters.add(c);
      }
    for (const [c, changes] of updates) {
      const map = (next.get(c) ?? EMPTY).withChanges(changes);
      if (map === next.get(c)) continue;
      next.set(c, map);
      touchedClusters.add(c);
    }
    this.#byCluster = next;
    this.#derived = undefined;
    return touchedClusters;
  }

  #index(cluster: string): PodIndex {
    let i = this.#podIndex.get(cluster);
    if (!i) this.#podIndex.set(cluster, (i = new PodIndex()));
    return i;
  }

  #reloadStructure(model: MeshModel): void {
    this.#selectors = new Map();
    this.#clusters = model.clusters().map((c) => {
      const objects = [...model.objectsOf(c.name).values()];
      const services = objects.filter((o): o is ServiceObject => o.kind === 'Service');
      this.#selectors.set(c.name, new SelectorIndex(services));
      const exports = objects.filter((o): o is ServiceExportObject => o.kind === 'ServiceExport');
      return {
        name: c.name,
        live: !model.stale(c.name),
        namespaces: new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.name)),
        services,
        exports,
        // pods come from the kept index
        pods: [],
        // kept until the next structural change: a pod-only revision looks up its few imports
        byName: indexByName({ services, exports }),
      };
    });
    for (const c of [...this.#podIndex.keys()])
      if (!this.#clusters.some((x) => x.name === c)) this.#podIndex.delete(c);
  }
}

const EMPTY = BucketedMap.empty<EncodedResource>(256);

/**
 * A cluster's Services by one label of their selector, so a changed pod is
 * tested only against the Services that select on one of its labels (and
 * those with an empty selector), not every Service of its namespace.
 */
class SelectorIndex {
  /** namespace\nkey=value (the selector's first label) -> Services */
  readonly #byLabel = new Map<string, ServiceObject[]>();
  /** namespace -> Services with an empty selector (every pod of the namespace) */
  readonly #everyPod = new Map<string, ServiceObject[]>();

  constructor(services: readonly ServiceObject[]) {
    for (const svc of services) {
      if (svc.selector === null) continue;
      const first = Object.entries(svc.selector)[0];
      if (first === undefined) push(this.#everyPod, svc.namespace, svc);
      else push(this.#byLabel, `${svc.namespace}\n${first[0]}=${first[1]}`, svc);
    }
  }

  /** Adds namespace/name of every Service selecting `pod` to `into`. */
  selecting(pod: { namespace: string; labels: Record<string, string> }, into: Set<string>): void {
    for (const svc of this.#everyPod.get(pod.namespace) ?? [])
      into.add(`${svc.namespace}/${svc.name}`);
    for (const k in pod.labels) {
      for (const svc of this.#byLabel.get(`${pod.namespace}\n${k}=${pod.labels[k]}`) ?? []) {
        let all = true;
        for (const sk in svc.selector) if (pod.labels[sk] !== svc.selector[sk]) all = false;
        if (all) into.add(`${svc.namespace}/${svc.name}`);
      }
    }
  }
}

function push<V>(m: Map<string, V[]>, k: string, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}
