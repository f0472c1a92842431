import type { Clock } from '../../common/index.js';
import type { ClusterStatus, ComponentStatus, StatusResponse } from '../../proto/index.js';
import type { SourceRegistry } from '../ingest/index.js';
import type { MeshModel } from '../model/index.js';
import type { SnapshotCache } from '../snapshot/index.js';
import type { Tracker } from '../telemetry/index.js';
import { nodeStatus } from './skew.js';

export interface StatusDeps {
  model: MeshModel;
  tracker: Tracker;
  sources: SourceRegistry;
  latest: () => { revision: number; commitTime: number };
  components: () => ComponentStatus[];
  clock: Clock;
  /** endpoint (cluster/namespace/pod) -> why its policy cannot be enforced exactly */
  cache: SnapshotCache;
}

/** The mesh as the admin API reports it: clusters, their nodes and sources. */
export function buildStatus(d: StatusDeps): StatusResponse {
  const withErrors = new Map<string, number>();
  for (const endpoint of d.cache.endpointErrors().keys()) {
    const cluster = endpoint.slice(0, endpoint.indexOf('/'));
    withErrors.set(cluster, (withErrors.get(cluster) ?? 0) + 1);
  }
  const clusters: ClusterStatus[] = d.model.clusters().map((c) => {
    const src = d.sources.state(c.name);
    let endpoints = 0;
    for (const o of d.model.objectsOf(c.name).values()) if (o.kind === 'Pod') endpoints += 1;
    let identities = 0;
    for (const i of d.model.identities()) if (i.cluster === c.name) identities += 1;
    return {
      name: c.name,
      id: c.id,
      joinedAt: d.model.member(c.name)?.joinedAt ?? '',
      identities,
      endpoints,
      endpointsWithErrors: withErrors.get(c.name) ?? 0,
      source: {
        connected: src?.connected ?? false,
        lastEventUnixMs: src?.lastEventAt ?? 0,
        lastError: src?.lastError ?? '',
        refusedChangeSets: src?.refused ?? 0,
      },
      nodes: c.nodes.map((n) => nodeStatus(d.tracker.view(c.name, n))),
    };
  });
  const latest = d.latest();
  return {
    revision: latest.revision,
    commitTimeUnixMs: latest.commitTime,
    components: d.components(),
    clusters,
  };
}
