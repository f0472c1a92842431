import type { ClusterSpec, MeshObject, NamespaceObject, PodObject } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import type { Converted } from './convert.js';
import { cidrContains, parseIPv4, parseIPv4Cidr } from './ipv4.js';
import type { IssueList } from './issues.js';
import type { ObjectOrigin } from './origin.js';
import { reportAt, where } from './origin.js';
import type { PlacePod, PreviousPlacements } from './placement.js';
import { assignIps, assignNodes, placeFresh, podKey } from './placement.js';
import { podIpField } from './pod.js';

/**
 * The checks that need all objects of a cluster: namespaces exist,
 * references resolve, pods are placed on nodes and get addresses, addresses
 * are unique. Returns the cluster's objects with pods placed; updates the
 * origins of pods whose address was assigned.
 */
export interface PlacementOptions {
  /** see ParseOptions.previousPlacements */
  previous?: PreviousPlacements | undefined;
  /** builds each placed pod; default: a new object (see PlacedPodMemo) */
  place?: PlacePod | undefined;
}

export function checkClusterObjects(
  spec: ClusterSpec,
  converted: ReadonlyMap<string, Converted>,
  origins: Map<string, ObjectOrigin>,
  issues: IssueList,
  opts: PlacementOptions = {},
): MeshObject[] {
  const origin = (key: string): ObjectOrigin =>
    origins.get(key) ?? { file: '', document: 0, path: '', object: key };
  const objects = [...converted.values()].map((c) => c.object);
  const implicit = checkNamespaces(spec, objects, origin, issues);
  checkReferences(converted, origin, issues);
  const placed = placePods(spec, converted, origins, issues, opts);
  checkPodIps(spec, placed, origin, issues);
  return [...objects.filter((o) => o.kind !== 'Pod'), ...placed.values(), ...implicit];
}

type OriginOf = (key: string) => ObjectOrigin;

/** Every namespaced object needs its Namespace document; `default` exists in every cluster. */
function checkNamespaces(
  spec: ClusterSpec,
  objects: readonly MeshObject[],
  origin: OriginOf,
  issues: IssueList,
): NamespaceObject[] {
  const declared = new Set(objects.filter((o) => o.kind === 'Namespace').map((o) => o.name));
  let usesDefault = false;
  for (const object of objects) {
    if (object.namespace === '' || declared.has(object.namespace)) continue;
    if (object.namespace === 'default') {
      usesDefault = true;
      continue;
    }
    reportAt(
      issues,
      origin(objectKey(object)),
      'metadata.namespace',
      `namespace "${object.namespace}" has no Namespace document in cluster ${spec.name}`,
    );
  }
  if (!usesDefault) return [];
  const labels = { 'kubernetes.io/metadata.name': 'default' };
  return [{ kind: 'Namespace', cluster: spec.name, namespace: '', name: 'default', labels }];
}

/** Undeclared references are accepted (what they name may be managed elsewhere), with a warning. */
function checkReferences(
  converted: ReadonlyMap<string, Converted>,
  origin: OriginOf,
  issues: IssueList,
): void {
  // Origins are looked up only for objects with something to report, and
  // each service account once per namespace: this runs over every object of
  // the folder on every reload.
  const accounts = new Map<string, Map<string, boolean>>();
  const declared = (namespace: string, name: string): boolean => {
    let byName = accounts.get(namespace);
    if (!byName) accounts.set(namespace, (byName = new Map<string, boolean>()));
    let known = byName.get(name);
    if (known === undefined) {
      known = converted.has(objectKey({ kind: 'ServiceAccount', namespace, name }));
      byName.set(name, known);
    }
    return known;
  };
  for (const [key, { object }] of converted) {
    if (object.kind === 'Pod' && object.serviceAccount !== 'default') {
      if (!declared(object.namespace, object.serviceAccount)) {
        const message = `ServiceAccount "${object.serviceAccount}" is not declared; assumed to exist`;
        reportAt(issues, origin(key), 'spec.serviceAccountName', message, 'warning');
      }
    }
    if (object.kind === 'ServiceExport') {
      const ref = { kind: 'Service', namespace: object.namespace, name: object.name } as const;
      if (!converted.has(objectKey(ref))) {
        const message = `no Service "${object.name}" in namespace ${object.namespace} to export`;
        reportAt(issues, origin(key), 'metadata.name', message, 'warning');
      }
    }
  }
}

function placePods(
  spec: ClusterSpec,
  converted: ReadonlyMap<string, Converted>,
  origins: Map<string, ObjectOrigin>,
  issues: IssueList,
  opts: PlacementOptions,
): Map<string, PodObject> {
  const previous = opts.previous ?? new Map<string, never>();
  const place = opts.place ?? placeFresh;
  // One pass, and the taken-address set only when someone needs an address:
  // this runs over every pod of the folder on every reload.
  const drafts: { key: string; pod: PodObject }[] = [];
  const needNode: PodObject[] = [];
  const needIp: PodObject[] = [];
  for (const [key, c] of converted) {
    if (c.pod === undefined) continue;
    drafts.push({ key, pod: c.pod.pod });
    if (c.pod.assignNode) needNode.push(c.pod.pod);
    if (c.pod.assignIp) needIp.push(c.pod.pod);
  }
  const nodes = assignNodes(needNode, spec.nodes, previous);
  const cidr = parseIPv4Cidr(spec.podCIDR);
  const ips =
    'cidr' in cidr && needIp.length > 0
      ? assignIps(needIp, cidr.cidr, new Set(drafts.flatMap((d) => d.pod.ips)), previous)
      : undefined;
  const placed = new Map<string, PodObject>();
  for (const { key, pod } of drafts) {
    const byPod = podKey(pod);
    const ip = ips?.assigned.get(byPod);
    const at = origins.get(key);
    if (ip !== undefined && at !== undefined) origins.set(key, { ...at, ipSource: 'assigned' });
    const node = nodes.get(byPod) ?? pod.node;
    placed.set(key, place(key, pod, node, ip === undefined ? pod.ips : [ip]));
  }
  for (const pod of ips?.exhausted ?? []) {
    const at = origins.get(objectKey(pod));
    const message = `no free address left in podCIDR ${spec.podCIDR} of cluster ${spec.name}`;
    if (at !== undefined) reportAt(issues, at, 'status.podIP', message);
  }
  return placed;
}

/** Addresses must be unique; outside the pod CIDR they are accepted but the lab will not route them. */
function checkPodIps(
  spec: ClusterSpec,
  pods: ReadonlyMap<string, PodObject>,
  origin: OriginOf,
  issues: IssueList,
): void {
  const cidr = parseIPv4Cidr(spec.podCIDR);
  const owners = new Map<string, string>();
  // Where to point is worked out only when there is something to report.
  const report = (key: string, index: number, message: string, severity: 'error' | 'warning') => {
    const here = origin(key);
    reportAt(issues, here, podIpField(here.ipSource ?? 'none', index), message, severity);
  };
  for (const [key, pod] of pods) {
    for (let index = 0; index < pod.ips.length; index++) {
      const ip = pod.ips[index]!;
      const owner = owners.get(ip);
      if (owner !== undefined) {
        report(key, index, `pod IP ${ip} is also used by ${where(origin(owner))}`, 'error');
      }
      owners.set(ip, key);
      const value = parseIPv4(ip);
      if ('cidr' in cidr && value !== undefined && !cidrContains(cidr.cidr, value)) {
        const message = `pod IP ${ip} is outside podCIDR ${spec.podCIDR} of cluster ${spec.name}`;
        report(key, index, message, 'warning');
      }
    }
  }
}
