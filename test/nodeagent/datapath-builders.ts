// Builders and helpers for datapath changes and contents, shared by the
// contract suite and backend-specific tests.
import {
  Digest,
  endpointEntry,
  ipcacheEntry,
  policyEntry,
  serviceEntry,
} from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import type {
  DatapathChange,
  DatapathContents,
  EndpointRecord,
  PolicyRecord,
  ServiceRecord,
} from '../../nodeagent/index.js';

export function emptyChange(): DatapathChange {
  return {
    ipcache: { upserts: [], deletes: [] },
    endpoints: { upserts: [], deletes: [] },
    policies: [],
    services: { upserts: [], deletes: [] },
  };
}

export function ep(name: string, ip: string, identity = 0x10100): EndpointRecord {
  return {
    cluster: 'eu',
    namespace: 'default',
    name,
    identity,
    ips: [ip],
    namedPorts: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ingressEnforced: true,
    egressEnforced: false,
  };
}

export function rule(
  identity: number,
  port: number,
  verdict = Verdict.VERDICT_ALLOW,
): PolicyRecord {
  return {
    direction: Direction.DIRECTION_INGRESS,
    identity,
    protocol: 6,
    portLow: port,
    portHigh: port,
    verdict,
  };
}

/**
 * A change adding (or growing) endpoints `names` (IPs `<net>.1`, `<net>.2`, …),
 * each with `per` allow entries: identities from `identity`, ports `port` to
 * `port + ports - 1` in turn.
 */
export function bulkPolicyChange(
  names: string[],
  per: number,
  port: number,
  o: { net: string; identity: number; ports: number },
): DatapathChange {
  const c = emptyChange();
  names.forEach((name, e) => {
    c.endpoints.upserts.push({ ...ep(name, `${o.net}.${e + 1}`), resource: `endpoint/${name}` });
    const upserts = [];
    for (let i = 0; i < per; i++) upserts.push(rule(o.identity + i, port + (i % o.ports)));
    c.policies.push({
      endpoint: `eu/default/${name}`,
      resource: `endpoint/${name}`,
      upserts,
      deletes: [],
    });
  });
  return c;
}

export function svc(name: string, backendIps: string[]): ServiceRecord {
  return {
    namespace: 'default',
    name,
    type: 'ClusterSetIP',
    ips: ['10.255.0.9'],
    ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
    backends: backendIps.map((ip) => ({
      cluster: 'eu',
      ip,
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    })),
  };
}

/** The digest of a full read, computed independently with common/digest.ts. */
export function digestOf(c: DatapathContents): string {
  const entries: string[] = [];
  for (const e of c.ipcache) entries.push(ipcacheEntry(e.prefix, e.identity));
  for (const e of c.endpoints) entries.push(endpointEntry({ ...e, entries: [] }));
  for (const p of c.policies) for (const e of p.entries) entries.push(policyEntry(p.endpoint, e));
  for (const s of c.services) entries.push(serviceEntry(s));
  return Digest.of(entries).toString();
}

/** Contents in a canonical order, for comparisons. */
export function sorted(c: DatapathContents): DatapathContents {
  const by =
    <T>(key: (t: T) => string) =>
    (a: T, b: T) =>
      key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
  const pkey = (e: PolicyRecord): string =>
    `${e.direction}|${e.identity}|${e.protocol}|${e.portLow}|${e.portHigh}`;
  return {
    ipcache: [...c.ipcache].sort(by((e) => e.prefix)),
    endpoints: [...c.endpoints].sort(by((e) => `${e.cluster}/${e.namespace}/${e.name}`)),
    policies: c.policies
      .filter((p) => p.entries.length > 0)
      .map((p) => ({ endpoint: p.endpoint, entries: [...p.entries].sort(by(pkey)) }))
      .sort(by((p) => p.endpoint)),
    services: [...c.services].sort(by((s) => `${s.namespace}/${s.name}`)),
  };
}
