import type { MeshObject, PodObject } from '../../../common/index.js';
import type { Ipv4Cidr } from './ipv4.js';
import { cidrSize, formatIPv4, parseIPv4 } from './ipv4.js';

/** Where a pod was placed by an earlier load: kept while still valid, as a pod keeps its node and IP for life. */
export interface PreviousPlacement {
  readonly node: string;
  readonly ips: readonly string[];
}

/** By pod key `namespace/name`. */
export type PreviousPlacements = ReadonlyMap<string, PreviousPlacement>;

export function podKey(pod: { namespace: string; name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

function byNamespaceName(a: PodObject, b: PodObject): number {
  return a.namespace === b.namespace ? compare(a.name, b.name) : compare(a.namespace, b.namespace);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Spreads unplaced pods over the nodes round-robin in namespace/name order,
 * so the same folder always yields the same placement whatever the file
 * layout. A pod placed by a previous load keeps its node while it exists;
 * new pods continue the round-robin after them. Returns node by pod key.
 */
export function assignNodes(
  pods: readonly PodObject[],
  nodes: readonly string[],
  previous: PreviousPlacements = new Map(),
): Map<string, string> {
  const placement = new Map<string, string>();
  const fresh: PodObject[] = [];
  for (const pod of [...pods].sort(byNamespaceName)) {
    const kept = previous.get(podKey(pod))?.node;
    if (kept !== undefined && nodes.includes(kept)) placement.set(podKey(pod), kept);
    else fresh.push(pod);
  }
  const offset = placement.size;
  fresh.forEach((pod, index) => {
    const node = nodes[(offset + index) % nodes.length];
    if (node !== undefined) placement.set(podKey(pod), node);
  });
  return placement;
}

/**
 * Gives pods without an address one from the pod CIDR: the address a previous
 * load gave them if it is still free, else the lowest free one, in
 * namespace/name order, skipping the network and broadcast addresses and
 * every address taken explicitly. Returns address by pod key and the pods
 * that did not fit.
 */
export function assignIps(
  pods: readonly PodObject[],
  cidr: Ipv4Cidr,
  taken: ReadonlySet<string>,
  previous: PreviousPlacements = new Map(),
): { assigned: Map<string, string>; exhausted: PodObject[] } {
  // The usual case on a reload: every pod has its address written or kept.
  if (pods.length === 0) return { assigned: new Map(), exhausted: [] };
  const used = new Set<number>();
  for (const ip of taken) {
    const value = parseIPv4(ip);
    if (value !== undefined) used.add(value);
  }
  const first = cidr.base + 1;
  const last = cidr.base + cidrSize(cidr) - 2;
  const assigned = new Map<string, string>();
  const fresh: PodObject[] = [];
  for (const pod of [...pods].sort(byNamespaceName)) {
    const kept = parseIPv4(previous.get(podKey(pod))?.ips[0] ?? '');
    if (kept !== undefined && kept >= first && kept <= last && !used.has(kept)) {
      used.add(kept);
      assigned.set(podKey(pod), formatIPv4(kept));
    } else {
      fresh.push(pod);
    }
  }
  const exhausted: PodObject[] = [];
  let next = first;
  for (const pod of fresh) {
    while (next <= last && used.has(next)) next += 1;
    if (next > last) {
      exhausted.push(pod);
      continue;
    }
    used.add(next);
    assigned.set(podKey(pod), formatIPv4(next));
  }
  return { assigned, exhausted };
}

/** Builds the placed pod for a converted pod (`draft`) and the node and addresses it got. */
export type PlacePod = (
  key: string,
  draft: PodObject,
  node: string,
  ips: readonly string[],
) => PodObject;

export const placeFresh: PlacePod = (_key, draft, node, ips) => ({ ...draft, node, ips: [...ips] });

/**
 * A PlacePod that hands back the object it built last time when the draft is
 * the same object (an unchanged file's cached conversion) and the placement is
 * equal: equal by value to placeFresh's, but the same reference, so consumers
 * can tell unchanged pods apart by identity instead of re-serializing them.
 * Built objects must be treated as immutable.
 */
export class PlacedPodMemo {
  #last = new Map<string, { draft: PodObject; placed: PodObject }>();
  #next = new Map<string, { draft: PodObject; placed: PodObject }>();

  readonly place: PlacePod = (key, draft, node, ips) => {
    const last = this.#last.get(key);
    const placed =
      last !== undefined &&
      last.draft === draft &&
      last.placed.node === node &&
      sameIps(last.placed.ips, ips)
        ? last.placed
        : placeFresh(key, draft, node, ips);
    this.#next.set(key, { draft, placed });
    return placed;
  };

  /** Ends a load: what it built is what the next load may reuse. */
  commit(): void {
    this.#last = this.#next;
    this.#next = new Map();
  }
}

function sameIps(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((ip, i) => ip === b[i]);
}

/** The placements of a load's pods, to pass to the next load of the same cluster. */
export function podPlacements(objects: readonly MeshObject[]): Map<string, PreviousPlacement> {
  const placements = new Map<string, PreviousPlacement>();
  for (const object of objects) {
    if (object.kind === 'Pod')
      placements.set(podKey(object), { node: object.node, ips: object.ips });
  }
  return placements;
}
