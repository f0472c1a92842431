import type { ListServicesResponse } from '../../proto/index.js';
import type { SnapshotCache } from '../snapshot/index.js';

/** `meshctl services`: imports with ports, IPs, type, source clusters, and the exports' conditions. */
export function listServices(cache: SnapshotCache): ListServicesResponse {
  const { imports, exports } = cache.services.derived;
  return {
    revision: cache.latest.revision,
    imports: imports.map((i) => ({
      namespace: i.namespace,
      name: i.name,
      type: i.type,
      sessionAffinity: i.sessionAffinity,
      ips: i.ips,
      ports: i.ports,
      clusters: i.clusters,
      importedInto: i.importedInto,
      endpoints: i.endpoints.map((e) => ({
        cluster: e.cluster,
        addresses: e.addresses,
        ports: e.ports,
      })),
    })),
    exports: exports.map((e) => ({ ...e, conditions: e.conditions.map((c) => ({ ...c })) })),
  };
}
