/**
 * The pure part of the test hosts: from the nodes, pods and world peers of a
 * run to the namespaces, links, addresses, routes and sysctls that make them.
 * No I/O here; testbed.ts executes the plan.
 *
 * Layout (DESIGN.md "Test hosts, lab and demo on one machine"):
 *   pod ns  eth0 (pod IP/32, default dev eth0)
 *     └─veth─ node ns  lxcN (route pod IP/32 dev lxcN; proxy ARP answers for the rest)
 *               fabric0 169.254.a.b+2/30 ─veth─ fabric ns  nI 169.254.a.b+1/30
 *   world ns eth0 (198.18.x.y/32) ─veth─ fabric ns wJ
 * The fabric routes every pod /32 to its node and every world /32 to its peer,
 * and holds unreachable routes for the run's pod CIDRs and 198.18.0.0/15, so
 * an address nobody holds is refused at once and nothing leaves the run.
 */

export const WORLD_RANGE = '198.18.0.0/15';

export interface NodeSpec {
  cluster: string;
  name: string;
}

export interface PortsSpec {
  tcp: number[];
  udp: number[];
}

export interface PodSpec extends PortsSpec {
  cluster: string;
  namespace: string;
  name: string;
  node: string;
  /** IPv4 address */
  ip: string;
}

export interface WorldSpec extends PortsSpec {
  /** IPv4 address in 198.18.0.0/15 */
  ip: string;
}

export interface TestbedSpec {
  /** short, [a-z0-9]; names every namespace of the run */
  runId: string;
  nodes: NodeSpec[];
  pods: PodSpec[];
  world: WorldSpec[];
  /** the run's pod CIDRs (made unreachable in the fabric) */
  podCidrs: string[];
}

/** `ip -n NETNS -batch -` lines, run in order. */
export interface NamespaceStep {
  netns: string;
  lines: string[];
}

export interface PlannedPod extends PodSpec {
  netns: string;
  /** the node namespace */
  nodeNetns: string;
  /** host-side veth, in the node namespace */
  hostIfname: string;
}

export interface PlannedNode extends NodeSpec {
  netns: string;
  /** the fabric's address on this node's link (the node's next hop) */
  fabricIp: string;
}

export interface PlannedWorld extends WorldSpec {
  netns: string;
}

export interface Plan {
  runId: string;
  prefix: string;
  fabric: string;
  nodes: PlannedNode[];
  pods: PlannedPod[];
  world: PlannedWorld[];
  /** every namespace of the run, fabric first */
  namespaces: string[];
  /** sysctls per namespace, set before links are made (so `default.*` applies to new links) */
  sysctls: { netns: string; settings: string[] }[];
  /** link creation first (the fabric, then nodes), then addresses and routes */
  steps: NamespaceStep[];
  /** per-interface sysctls, set after the steps */
  linkSysctls: { netns: string; settings: string[] }[];
}

const MAX_NETNS_NAME = 200;
const ROUTER_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv4.conf.all.rp_filter=0',
  'net.ipv4.conf.default.rp_filter=0',
  'net.ipv4.conf.default.proxy_arp=1',
];

export function nodeKey(cluster: string, node: string): string {
  return `${cluster}/${node}`;
}

export function podKey(p: { cluster: string; namespace: string; name: string }): string {
  return `${p.cluster}/${p.namespace}/${p.name}`;
}

/** Two addresses of a /30 per node link, counted from 169.254.0.0. */
function linkAddresses(index: number): { fabric: string; node: string } {
  const base = index * 4;
  const ip = (n: number): string => `169.254.${(n >> 8) & 255}.${n & 255}`;
  return { fabric: ip(base + 1), node: ip(base + 2) };
}

/** Checks the spec and plans it; throws an Error naming the first problem. */
export function planTestbed(spec: TestbedSpec): Plan {
  if (!/^[a-z0-9]{1,12}$/.test(spec.runId))
    throw new Error(`run id "${spec.runId}" must be 1-12 of [a-z0-9]`);
  if (spec.nodes.length > 16_000) throw new Error('more than 16,000 nodes');
  const prefix = `mp-${spec.runId}-`;
  const fabric = `${prefix}fabric`;
  const bounded = (name: string, fallback: string): string =>
    name.length <= MAX_NETNS_NAME && !name.includes('/') ? name : fallback;

  const nodes: PlannedNode[] = spec.nodes.map((n, i) => ({
    ...n,
    netns: bounded(`${prefix}${n.cluster}.${n.name}`, `${prefix}node${i}`),
    fabricIp: linkAddresses(i).fabric,
  }));
  const nodeByKey = new Map(nodes.map((n) => [nodeKey(n.cluster, n.name), n]));
  if (nodeByKey.size !== nodes.length) throw new Error('a node is listed twice');

  const seenIps = new Set<string>();
  const takeIp = (ip: string, who: string): void => {
    if (seenIps.has(ip)) throw new Error(`${who}: address ${ip} is used twice`);
    seenIps.add(ip);
  };
  const perNode = new Map<string, number>();
  const pods: PlannedPod[] = spec.pods.map((p, i) => {
    const node = nodeByKey.get(nodeKey(p.cluster, p.node));
    if (node === undefined) throw new Error(`pod ${podKey(p)}: node ${p.node} is not in the run`);
    takeIp(p.ip, `pod ${podKey(p)}`);
    const k = perNode.get(node.netns) ?? 0;
    perNode.set(node.netns, k + 1);
    return {
      ...p,
      netns: bounded(`${prefix}${p.cluster}.${p.namespace}.${p.name}`, `${prefix}pod${i}`),
      nodeNetns: node.netns,
      hostIfname: `lxc${k}`,
    };
  });
  const world: PlannedWorld[] = spec.world.map((w, i) => {
    if (!inWorldRange(w.ip)) throw new Error(`world peer ${w.ip} is not in ${WORLD_RANGE}`);
    takeIp(w.ip, 'world peer');
    return { ...w, netns: `${prefix}world${i}` };
  });

  const fabricLines: string[] = ['link set lo up'];
  // Proxy ARP answers after a random delay of up to 0.8 s unless told otherwise;
  // neigh.default is not per namespace, so each router-side link gets it.
  const noProxyDelay = (ifname: string): string => `net.ipv4.neigh.${ifname}.proxy_delay=0`;
  const fabricLinkSysctls: string[] = [];
  const linkSysctls = [{ netns: fabric, settings: fabricLinkSysctls }];
  const steps: NamespaceStep[] = [{ netns: fabric, lines: fabricLines }];
  nodes.forEach((n, i) => {
    const addr = linkAddresses(i);
    fabricLines.push(
      `link add n${i} type veth peer name fabric0 netns ${n.netns}`,
      `addr add ${addr.fabric}/30 dev n${i}`,
      `link set n${i} up`,
    );
    fabricLinkSysctls.push(noProxyDelay(`n${i}`));
    const nodeLinkSysctls = [noProxyDelay('fabric0')];
    linkSysctls.push({ netns: n.netns, settings: nodeLinkSysctls });
    const lines = [
      'link set lo up',
      `addr add ${addr.node}/30 dev fabric0`,
      'link set fabric0 up',
      ...[...spec.podCidrs, WORLD_RANGE].map((c) => `route add ${c} via ${addr.fabric}`),
    ];
    for (const p of pods.filter((p) => p.nodeNetns === n.netns)) {
      lines.push(
        `link add ${p.hostIfname} type veth peer name eth0 netns ${p.netns}`,
        `link set ${p.hostIfname} up`,
        `route add ${p.ip}/32 dev ${p.hostIfname}`,
      );
      nodeLinkSysctls.push(noProxyDelay(p.hostIfname));
      fabricLines.push(`route add ${p.ip}/32 via ${addr.node} dev n${i}`);
    }
    steps.push({ netns: n.netns, lines });
  });
  world.forEach((w, i) => {
    fabricLines.push(
      `link add w${i} type veth peer name eth0 netns ${w.netns}`,
      `link set w${i} up`,
      `route add ${w.ip}/32 dev w${i}`,
    );
    fabricLinkSysctls.push(noProxyDelay(`w${i}`));
  });
  for (const c of [...spec.podCidrs, WORLD_RANGE]) fabricLines.push(`route add unreachable ${c}`);
  for (const h of [...pods, ...world]) {
    steps.push({
      netns: h.netns,
      lines: [
        'link set lo up',
        `addr add ${h.ip}/32 dev eth0`,
        'link set eth0 up',
        'route add default dev eth0',
      ],
    });
  }
  return {
    runId: spec.runId,
    prefix,
    fabric,
    nodes,
    pods,
    world,
    namespaces: [
      fabric,
      ...nodes.map((n) => n.netns),
      ...pods.map((p) => p.netns),
      ...world.map((w) => w.netns),
    ],
    sysctls: [fabric, ...nodes.map((n) => n.netns)].map((netns) => ({
      netns,
      settings: ROUTER_SYSCTLS,
    })),
    steps,
    linkSysctls,
  };
}

export function inWorldRange(ip: string): boolean {
  const m = /^198\.(18|19)\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  return m !== null && Number(m[2]) < 256 && Number(m[3]) < 256;
}
