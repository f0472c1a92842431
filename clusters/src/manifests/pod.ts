import { isIPv6 } from 'node:net';
import type { ClusterSpec, PodObject, PortSpec } from '../../../common/index.js';
import type { Field } from './field.js';
import { parseIPv4 } from './ipv4.js';
import type { Metadata } from './metadata.js';
import { checkDnsSubdomain, checkPortName } from './names.js';

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
export const PORT_RANGE = { min: 1, max: 65535 };

export interface PodContext {
  readonly cluster: ClusterSpec;
  /** true when `--nodes N` replaced the node list, so nodeNames written for the old list may be stale */
  readonly nodesOverridden: boolean;
}

/** A converted pod and what placement still has to fill in. */
export interface PodDraft {
  pod: PodObject;
  assignNode: boolean;
  assignIp: boolean;
  /** where the pod's addresses were written, for messages about them */
  ipSource: IpSource;
}

export type IpSource = 'status.podIP' | 'status.podIPs' | 'assigned' | 'none';

/** The field to name for a pod's index-th address. */
export function podIpField(source: IpSource, index: number): string {
  return source === 'status.podIPs' ? `status.podIPs[${index}].ip` : 'status.podIP';
}

export function convertPod(root: Field, meta: Metadata, ctx: PodContext): PodDraft {
  const spec = root.child('spec');
  spec.record();
  const hostNetwork = spec.child('hostNetwork').boolean() ?? false;
  const serviceAccount = spec.child('serviceAccountName').name(checkDnsSubdomain) ?? 'default';
  const node = readNodeName(spec.child('nodeName'), ctx);
  const status = root.child('status');
  status.record();
  const { ips, source } = readPodIps(status, hostNetwork);
  const pod: PodObject = {
    kind: 'Pod',
    cluster: ctx.cluster.name,
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    ips,
    node: node ?? '',
    serviceAccount,
    ports: readContainerPorts(spec.child('containers')),
    ready: readReady(status.child('conditions')),
    hostNetwork,
  };
  if (meta.creationTimestamp !== undefined) pod.creationTimestamp = meta.creationTimestamp;
  return {
    pod,
    assignNode: node === undefined,
    assignIp: !hostNetwork && ips.length === 0,
    ipSource: source,
  };
}

function readNodeName(field: Field, ctx: PodContext): string | undefined {
  if (!field.present) return undefined;
  const node = field.string({ nonEmpty: true });
  if (node === undefined || ctx.cluster.nodes.includes(node)) return node;
  const known = ctx.cluster.nodes.join(', ');
  if (ctx.nodesOverridden) {
    field.warn(
      `node "${node}" is not one of ${known} (--nodes replaced the list); placed round-robin`,
    );
  } else {
    field.error(`node "${node}" is not a node of cluster ${ctx.cluster.name} (${known})`);
  }
  return undefined;
}

function readContainerPorts(containers: Field): PortSpec[] {
  const ports: PortSpec[] = [];
  const names = new Map<string, string>();
  for (const container of containers.items()) {
    container.record();
    for (const portField of container.child('ports').items()) {
      portField.record({ required: true });
      const port = portField.child('containerPort').integer(PORT_RANGE, { required: true });
      const protocol = portField.child('protocol').oneOf(PROTOCOLS) ?? 'TCP';
      const nameField = portField.child('name');
      const name = nameField.present ? nameField.name(checkPortName) : '';
      if (name !== undefined && name !== '') {
        // Service targetPorts and policies resolve port names per pod, so a
        // name must mean one port in the whole pod.
        const first = names.get(name);
        if (first !== undefined) nameField.error(`port name "${name}" is already used at ${first}`);
        names.set(name, nameField.path);
      }
      if (port !== undefined && name !== undefined) ports.push({ name, port, protocol });
    }
  }
  return ports;
}

function readReady(conditions: Field): boolean {
  let ready = true;
  for (const condition of conditions.items()) {
    condition.record();
    const type = condition.child('type').string();
    const status = condition.child('status').oneOf(['True', 'False', 'Unknown']);
    if (type === 'Ready' && status === 'False') ready = false;
  }
  return ready;
}

/** Canonical text of an IPv4 or IPv6 address, or undefined when it is neither. */
export function canonicalIp(text: string): string | undefined {
  if (parseIPv4(text) !== undefined) return text;
  if (!isIPv6(text)) return undefined;
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

function readPodIps(status: Field, hostNetwork: boolean): { ips: string[]; source: IpSource } {
  const podIP = status.child('podIP');
  const podIPs = status.child('podIPs');
  const single = podIP.present ? readIp(podIP) : undefined;
  const listed: string[] = [];
  for (const item of podIPs.items()) {
    item.record({ required: true });
    const ip = readIp(item.child('ip'), true);
    if (ip !== undefined) listed.push(ip);
  }
  if (single !== undefined && listed.length > 0 && listed[0] !== single) {
    podIP.error(`must equal status.podIPs[0].ip (${listed[0]}), as Kubernetes keeps them`);
  }
  const ips = listed.length > 0 ? listed : single === undefined ? [] : [single];
  const families = ips.map((ip) => (ip.includes(':') ? 'IPv6' : 'IPv4'));
  if (new Set(families).size !== families.length) {
    podIPs.error('must hold at most one IPv4 and one IPv6 address');
  }
  if (hostNetwork && ips.length > 0) {
    // A hostNetwork pod shares its node's address and has the host identity.
    (listed.length > 0 ? podIPs : podIP).warn('ignored: hostNetwork pods have no pod IP');
    return { ips: [], source: 'none' };
  }
  const source =
    listed.length > 0 ? 'status.podIPs' : single === undefined ? 'none' : 'status.podIP';
  return { ips, source };
}

function readIp(field: Field, required = false): string | undefined {
  const text = field.string({ required, nonEmpty: true });
  if (text === undefined) return undefined;
  const ip = canonicalIp(text);
  if (ip === undefined) field.error(`"${text}" is not an IP address`);
  return ip;
}
