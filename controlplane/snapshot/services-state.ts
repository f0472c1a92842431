import {
  encodeResource,
  resourceKey,
  type EncodedResource,
  type ServiceExportObject,
  type ServiceObject,
} from '../../common/index.js';
import { TYPE_SERVICE } from '../../proto/index.js';
import type { MeshModel, ModelChange } from '../model/index.js';
import {
  PodIndex,
  deriveServices,
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
  /** cluster -> namespace -> its Services (to find what a pod change touches) */
  #servicesByNs = new Map<string, Map<string, ServiceObject[]>>();
  readonly #imports = new Map<string, ServiceImportView>();
  readonly #exports = new Map<string, ExportStatus[]>();
  readonly #encoded = new Map<string, EncodedResource>();
  #byCluster = new Map<string, ReadonlyMap<string, EncodedResource>>();
  #derived: DerivedServices | undefined;
  #initialized = false;

  get derived(): DerivedServices {
    this.#derived ??= {
      imports: [...this.#imports.values()].sort((a, b) =>
        cmp(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`),
      ),
      exports: [...this.#exports.entries()]
        .sort(([a], [b]) => cmp(a, b))
        .flatMap(([, list]) => [...list].sort((a, b) => cmp(a.cluster, b.cluster))),
    };
    return this.#derived;
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
        for (const p of [before, after]) {
          if (!p) continue;
          for (const svc of this.#servicesByNs.get(p.cluster)?.get(p.namespace) ?? []) {
            if (svc.selector && Object.entries(svc.selector).every(([k, v]) => p.labels[k] === v)) {
              only.add(`${svc.namespace}/${svc.name}`);
            }
          }
        }
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
    // Copy-on-write per cluster: snapshots already published keep their map.
    const next = new Map(this.#byCluster);
    for (const c of this.#clusters.map((x) => x.name)) if (!next.has(c)) next.set(c, EMPTY);
    for (const c of [...next.keys()])
      if (!this.#clusters.some((x) => x.name === c)) {
        next.delete(c);
        touchedClusters.add(c);
      }
    for (const [c, changes] of updates) {
      const map = new Map(next.get(c) ?? EMPTY);
      for (const [k, r] of changes) {
        if (r) map.set(k, r);
        else map.delete(k);
      }
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
    this.#servicesByNs = new Map();
    this.#clusters = model.clusters().map((c) => {
      const objects = [...model.objectsOf(c.name).values()];
      const services = objects.filter((o): o is ServiceObject => o.kind === 'Service');
      const byNs = new Map<string, ServiceObject[]>();
      for (const svc of services)
        byNs.set(svc.namespace, [...(byNs.get(svc.namespace) ?? []), svc]);
      this.#servicesByNs.set(c.name, byNs);
      return {
        name: c.name,
        live: !model.stale(c.name),
        namespaces: new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.name)),
        services,
        exports: objects.filter((o): o is ServiceExportObject => o.kind === 'ServiceExport'),
        // pods come from the kept index
        pods: [],
      };
    });
    for (const c of [...this.#podIndex.keys()])
      if (!this.#clusters.some((x) => x.name === c)) this.#podIndex.delete(c);
  }
}

const EMPTY: ReadonlyMap<string, EncodedResource> = new Map();
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
