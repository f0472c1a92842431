import type { ClusterSpec, MeshObject } from '../common/index.js';
import { inWorldRange, podKey, type PodSpec, type TestbedSpec, type WorldSpec } from './plan.js';

/** A port a run must serve: on a pod (cluster/namespace/name) or a world address. */
export interface ServedPort {
  to: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

/**
 * The test hosts for a mesh: every node, every pod with an IPv4 address
 * (hostNetwork pods share their node's address and are left out), and a
 * world peer for every served address in 198.18.0.0/15. Each pod serves its
 * declared TCP/UDP container ports plus every port in `served` aimed at it.
 * Throws an Error naming a served target that is neither.
 */
export function testbedSpecOf(
  runId: string,
  clusters: readonly { spec: ClusterSpec; objects: readonly MeshObject[] }[],
  served: readonly ServedPort[],
): TestbedSpec {
  const pods = new Map<string, PodSpec>();
  for (const c of clusters)
    for (const o of c.objects) {
      if (o.kind !== 'Pod' || o.hostNetwork) continue;
      const ip = o.ips.find((a) => a.includes('.'));
      if (ip === undefined) continue;
      const pod: PodSpec = {
        cluster: c.spec.name,
        namespace: o.namespace,
        name: o.name,
        node: o.node,
        ip,
        tcp: [],
        udp: [],
      };
      for (const p of o.ports) addPort(pod, p.port, p.protocol);
      pods.set(podKey(pod), pod);
    }
  const world = new Map<string, WorldSpec>();
  for (const s of served) {
    if (s.protocol === 'SCTP') continue;
    let target: PodSpec | WorldSpec | undefined = pods.get(s.to);
    if (target === undefined && inWorldRange(s.to)) {
      target = world.get(s.to) ?? { ip: s.to, tcp: [], udp: [] };
      world.set(s.to, target);
    }
    if (target === undefined)
      throw new Error(
        `${s.to}: not a pod with an IPv4 address, nor a world address in 198.18.0.0/15`,
      );
    addPort(target, s.port, s.protocol);
  }
  return {
    runId,
    nodes: clusters.flatMap((c) => c.spec.nodes.map((name) => ({ cluster: c.spec.name, name }))),
    pods: [...pods.values()],
    world: [...world.values()],
    podCidrs: clusters.map((c) => c.spec.podCIDR),
  };
}

function addPort(target: { tcp: number[]; udp: number[] }, port: number, protocol: string): void {
  const list = protocol === 'UDP' ? target.udp : protocol === 'TCP' ? target.tcp : undefined;
  if (list !== undefined && !list.includes(port)) list.push(port);
}
