import { join } from 'node:path';
import type { ClusterSpec, MeshObject } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import { CLUSTER_FILE } from './cluster-spec.js';
import type { Ipv4Cidr } from './ipv4.js';
import { cidrsOverlap, parseIPv4Cidr } from './ipv4.js';
import type { IssueList } from './issues.js';
import type { ObjectOrigin } from './origin.js';
import { reportAt, where } from './origin.js';
import { podIpField } from './pod.js';

interface ClusterInMesh {
  spec: ClusterSpec;
  objects: readonly MeshObject[];
  dir: string;
  origins: ReadonlyMap<string, ObjectOrigin>;
}

/**
 * Checks across the clusters of one mesh folder: unique names and ids,
 * disjoint pod CIDRs (pod IPs are routed without NAT between clusters, as in
 * Cilium ClusterMesh) and pod IPs unique mesh-wide.
 */
export function checkMesh(clusters: readonly ClusterInMesh[], issues: IssueList): void {
  const byName = new Map<string, ClusterInMesh>();
  const byId = new Map<number, ClusterInMesh>();
  const cidrs: { cluster: ClusterInMesh; cidr: Ipv4Cidr }[] = [];
  for (const cluster of clusters) {
    const file = join(cluster.dir, CLUSTER_FILE);
    const clash = (field: string, other: ClusterInMesh, message: string): void =>
      issues.add({
        file,
        object: `Cluster/${cluster.spec.name}`,
        field,
        message: `${message} (${join(other.dir, CLUSTER_FILE)})`,
        severity: 'error',
      });
    const sameName = byName.get(cluster.spec.name);
    if (sameName !== undefined)
      clash('name', sameName, `cluster name "${cluster.spec.name}" is already used`);
    const sameId = byId.get(cluster.spec.id);
    if (sameId !== undefined) {
      clash(
        'id',
        sameId,
        `cluster id ${cluster.spec.id} is already used by cluster ${sameId.spec.name}`,
      );
    }
    byName.set(cluster.spec.name, cluster);
    byId.set(cluster.spec.id, cluster);
    const parsed = parseIPv4Cidr(cluster.spec.podCIDR);
    if (!('cidr' in parsed)) continue;
    const overlapping = cidrs.find((c) => cidrsOverlap(c.cidr, parsed.cidr));
    if (overlapping !== undefined) {
      const other = overlapping.cluster.spec;
      clash(
        'podCIDR',
        overlapping.cluster,
        `podCIDR ${cluster.spec.podCIDR} overlaps ${other.podCIDR} of cluster ${other.name}`,
      );
    }
    cidrs.push({ cluster, cidr: parsed.cidr });
  }
  checkPodIpsAcrossClusters(clusters, issues);
}

function checkPodIpsAcrossClusters(clusters: readonly ClusterInMesh[], issues: IssueList): void {
  const owners = new Map<string, { cluster: ClusterInMesh; origin: ObjectOrigin }>();
  for (const cluster of clusters) {
    const mine = new Map<string, { cluster: ClusterInMesh; origin: ObjectOrigin }>();
    for (const object of cluster.objects) {
      if (object.kind !== 'Pod') continue;
      const key = objectKey(object);
      const origin = cluster.origins.get(key) ?? { file: '', document: 0, path: '', object: key };
      object.ips.forEach((ip, index) => {
        const owner = owners.get(ip);
        // Duplicates inside one cluster were reported by the cluster's own checks.
        if (owner !== undefined && owner.cluster !== cluster) {
          const message = `pod IP ${ip} is also used by cluster ${owner.cluster.spec.name}: ${where(owner.origin)}`;
          reportAt(issues, origin, podIpField(origin.ipSource ?? 'none', index), message);
        }
        mine.set(ip, { cluster, origin });
      });
    }
    for (const [ip, owner] of mine) if (!owners.has(ip)) owners.set(ip, owner);
  }
}
