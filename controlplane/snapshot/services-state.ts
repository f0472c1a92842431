import {
  encodeResource,
  resourceKey,
  type EncodedResource,
  type ServiceExportObject,
  type ServiceObject,
} from '../../common/index.js';
import { TYPE_SERVICE } from '../../proto/index.js';
import type { MeshModel, StoredPod } from '../model/index.js';
import {
  deriveServices,
  type ClusterObjects,
  type DerivedServices,
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
 * resources per cluster, shared by all its nodes. Pure.
 */
export class ServicesState {
  #derived: DerivedServices = { imports: [], exports: [] };
  #byCluster = new Map<string, ReadonlyMap<string, EncodedResource>>();

  get derived(): DerivedServices {
    return this.#derived;
  }

  resources(cluster: string): ReadonlyMap<string, EncodedResource> {
    return this.#byCluster.get(cluster) ?? new Map<string, EncodedResource>();
  }

  /** Recomputes every import; returns the clusters whose service resources changed. */
  update(model: MeshModel): Set<string> {
    const clusters: ClusterObjects[] = model.clusters().map((c) => {
      const objects = [...model.objectsOf(c.name).values()];
      return {
        name: c.name,
        live: !model.stale(c.name),
        namespaces: new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.name)),
        services: objects.filter((o): o is ServiceObject => o.kind === 'Service'),
        exports: objects.filter((o): o is ServiceExportObject => o.kind === 'ServiceExport'),
        pods: objects.filter((o): o is StoredPod => o.kind === 'Pod'),
      };
    });
    const ips = model.serviceIps();
    this.#derived = deriveServices(clusters, (ns, name) => ips.get(`${ns}/${name}`));
    const next = new Map<string, Map<string, EncodedResource>>();
    for (const c of clusters) next.set(c.name, new Map());
    for (const v of this.#derived.imports) {
      const r = encode(v);
      for (const c of v.importedInto) next.get(c)?.set(resourceKey(r.typeUrl, r.name), r);
    }
    const changed = new Set<string>();
    for (const [c, map] of next) {
      const prev = this.#byCluster.get(c);
      const same =
        prev !== undefined &&
        prev.size === map.size &&
        [...map].every(([k, r]) => prev.get(k)?.version === r.version);
      if (same) next.set(c, prev as Map<string, EncodedResource>);
      else changed.add(c);
    }
    for (const c of this.#byCluster.keys()) if (!next.has(c)) changed.add(c);
    this.#byCluster = next;
    return changed;
  }
}
