import type { FlowPeer, FlowRecord, ObservedFlow } from '../../proto/index.js';
import { RESERVED } from '../identity/index.js';

/** An endpoint of the mesh state, as the enricher names it. */
export interface PeerName {
  cluster: string;
  namespace: string;
  pod: string;
}

/** What the enricher reads from the control plane's state (owned by the caller). */
export interface PeerLookup {
  /** the endpoint holding `ip`, if any */
  endpointOf(ip: string): PeerName | undefined;
}

export type FlowVerdict = 'FORWARDED' | 'DROPPED' | 'AUDIT';
export const FLOW_VERDICTS: readonly FlowVerdict[] = ['FORWARDED', 'DROPPED', 'AUDIT'];

const RESERVED_NAMES = new Map<number, string>(
  Object.entries(RESERVED).map(([name, id]) => [id, name]),
);
const CIDR_IDENTITY_BASE = 1 << 24;

/** world, host, ... for reserved identities; "cidr" for CIDR identities; '' otherwise. */
export function identityName(id: number): string {
  return RESERVED_NAMES.get(id) ?? (id >= CIDR_IDENTITY_BASE ? 'cidr' : '');
}

const PROTOCOLS = new Map([
  [1, 'ICMP'],
  [6, 'TCP'],
  [17, 'UDP'],
  [58, 'ICMPv6'],
  [132, 'SCTP'],
]);

export function protocolName(n: number): string {
  return PROTOCOLS.get(n) ?? String(n);
}

/** A dropped packet is DROPPED; one an audit-mode policy would have denied is AUDIT; else FORWARDED. */
export function flowVerdict(r: Pick<FlowRecord, 'verdict' | 'policyVerdict'>): FlowVerdict {
  if (r.verdict === 'dropped') return 'DROPPED';
  return r.policyVerdict === 'audit' ? 'AUDIT' : 'FORWARDED';
}

function peer(ip: string, port: number, identity: number, lookup: PeerLookup): FlowPeer {
  const ep = lookup.endpointOf(ip);
  return {
    cluster: ep?.cluster ?? '',
    namespace: ep?.namespace ?? '',
    pod: ep?.pod ?? '',
    ip,
    port,
    identity,
    identityName: identityName(identity),
  };
}

/**
 * A node's raw flow record named from the mesh state: pods by
 * cluster/namespace/name from their IPs, reserved identities by name. Pure;
 * `sequence` is the buffer's.
 */
export function enrichFlow(
  record: FlowRecord,
  node: { cluster: string; node: string },
  lookup: PeerLookup,
  sequence: number,
): ObservedFlow {
  return {
    sequence,
    time: new Date(record.timeUnixMs).toISOString(),
    cluster: node.cluster,
    node: node.node,
    verdict: flowVerdict(record),
    reason: record.reason,
    direction: record.direction,
    protocol: protocolName(record.protocol),
    source: peer(record.srcIp, record.srcPort, record.srcIdentity, lookup),
    destination: peer(record.dstIp, record.dstPort, record.dstIdentity, lookup),
    endpoint: record.endpoint,
    endpointIdentity: record.endpointIdentity,
  };
}
