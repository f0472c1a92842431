import type { FlowPeer, ObservedFlow } from '../proto/index.js';

/** One side of a flow in `observe --json` and in `lab` results (stable schema; null = not known). */
export interface FlowPeerJson {
  cluster: string | null;
  namespace: string | null;
  pod: string | null;
  ip: string;
  port: number;
  identity: number;
  /** reserved identities by name (world, host, ...), "cidr" for CIDR identities */
  identityName: string | null;
}

/** One flow as `meshctl observe --json` prints it (one line each) and `lab` embeds it. */
export interface FlowJson {
  time: string;
  verdict: string;
  reason: string;
  direction: string;
  protocol: string;
  source: FlowPeerJson;
  destination: FlowPeerJson;
  /** the reporting node */
  node: { cluster: string; name: string };
  /** cluster/namespace/pod whose policy judged, null if it is gone */
  endpoint: string | null;
  endpointIdentity: number;
  summary: string;
  sequence: number;
}

const orNull = (s: string): string | null => (s === '' ? null : s);

function peerJson(p: FlowPeer | undefined): FlowPeerJson {
  return {
    cluster: orNull(p?.cluster ?? ''),
    namespace: orNull(p?.namespace ?? ''),
    pod: orNull(p?.pod ?? ''),
    ip: p?.ip ?? '',
    port: p?.port ?? 0,
    identity: p?.identity ?? 0,
    identityName: orNull(p?.identityName ?? ''),
  };
}

const HAS_PORTS = new Set(['TCP', 'UDP', 'SCTP']);

/** "8080/TCP" (ports only where the protocol has them). */
function portOf(f: ObservedFlow): string {
  return HAS_PORTS.has(f.protocol) ? `${f.destination?.port ?? 0}/${f.protocol}` : f.protocol;
}

/**
 * The verdict in words, e.g. "policy denied: no rule allows identity 65793 →
 * 131329 on 8080/TCP (ingress)".
 */
export function flowSummary(f: ObservedFlow): string {
  const who = `identity ${f.source?.identity ?? 0} → ${f.destination?.identity ?? 0} on ${portOf(f)} (${f.direction})`;
  switch (f.reason) {
    case 'default-denied':
      return `policy denied: no rule allows ${who}`;
    case 'policy-denied':
      return `policy denied: a deny rule matches ${who}`;
    case 'audit':
      return `audit: would be denied, forwarded (audit mode): ${who}`;
    case 'policy-allowed':
      return `policy allowed: ${who}`;
    case 'not-enforced':
      return `forwarded, not enforced: no policy selects ${f.endpoint || 'the endpoint'} for ${f.direction}: ${who}`;
    case 'conntrack-reply':
      return `forwarded: reply of an established connection: ${who}`;
    case 'conntrack-related':
      return `forwarded: related to an established connection (ICMP error): ${who}`;
    default:
      return `${f.verdict.toLowerCase()}: ${f.reason}: ${who}`;
  }
}

export function flowJson(f: ObservedFlow): FlowJson {
  return {
    time: f.time,
    verdict: f.verdict,
    reason: f.reason,
    direction: f.direction,
    protocol: f.protocol,
    source: peerJson(f.source),
    destination: peerJson(f.destination),
    node: { cluster: f.cluster, name: f.node },
    endpoint: orNull(f.endpoint),
    endpointIdentity: f.endpointIdentity,
    summary: flowSummary(f),
    sequence: f.sequence,
  };
}

function peerText(p: FlowPeer | undefined, withPort: boolean): string {
  const addr = withPort ? `${p?.ip ?? ''}:${p?.port ?? 0}` : (p?.ip ?? '');
  if (p?.pod) return `${p.cluster}/${p.namespace}/${p.pod} (${addr})`;
  return p?.identityName ? `${addr} (${p.identityName})` : addr;
}

/** One human line: time, verdict, source → destination, the verdict in words. */
export function flowLine(f: ObservedFlow): string {
  const ports = HAS_PORTS.has(f.protocol);
  const time = f.time.slice(11, 23);
  return `${time} ${f.verdict.padEnd(9)} ${peerText(f.source, ports)} → ${peerText(f.destination, ports)}  ${flowSummary(f)}`;
}
