import {
  Digest,
  decodeResource,
  encodeResource,
  entriesOfResource,
  type EncodedResource,
} from '../../common/index.js';
import {
  Direction,
  TYPE_ENDPOINT,
  TYPE_IPCACHE,
  TYPE_SERVICE,
  Verdict,
  type DeltaDiscoveryResponse,
  type EndpointPolicy,
  type PolicyEntry,
} from '../../proto/index.js';

export function shard(
  shardNo: number,
  entries: [prefix: string, identity: number][],
): EncodedResource {
  return encodeResource(`ipcache/${shardNo}`, {
    typeUrl: TYPE_IPCACHE,
    value: { shard: shardNo, entries: entries.map(([prefix, identity]) => ({ prefix, identity })) },
  });
}

export function allow(
  identity: number,
  port: number,
  direction = Direction.DIRECTION_INGRESS,
): PolicyEntry {
  return {
    direction,
    identity,
    protocol: 6,
    portLow: port,
    portHigh: port,
    verdict: Verdict.VERDICT_ALLOW,
  };
}

export function endpoint(
  pod: string,
  ip: string,
  entries: PolicyEntry[] = [],
  over: Partial<EndpointPolicy> = {},
): EncodedResource {
  const [namespace, name] = pod.split('/') as [string, string];
  const value: EndpointPolicy = {
    cluster: 'eu',
    namespace,
    name,
    identity: 0x10100,
    ips: [ip],
    namedPorts: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    ingressEnforced: entries.length > 0,
    egressEnforced: false,
    entries,
    ...over,
  };
  return encodeResource(`endpoint/eu/${pod}`, { typeUrl: TYPE_ENDPOINT, value });
}

export function service(ns: string, name: string, backends: string[]): EncodedResource {
  return encodeResource(`service/${ns}/${name}`, {
    typeUrl: TYPE_SERVICE,
    value: {
      namespace: ns,
      name,
      type: 'ClusterSetIP',
      ips: ['10.255.0.1'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      backends: backends.map((ip) => ({
        cluster: 'eu',
        ip,
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      })),
    },
  });
}

/** One part of a revision as the control plane sends it. */
export function part(p: {
  typeUrl: string;
  revision: number;
  nonce: string;
  resources?: EncodedResource[];
  removed?: string[];
  complete?: boolean;
}): Partial<DeltaDiscoveryResponse> {
  return {
    typeUrl: p.typeUrl,
    meshRevision: p.revision,
    nonce: p.nonce,
    resources: (p.resources ?? []).map((r) => ({
      name: r.name,
      version: r.version,
      payload: r.payload,
    })),
    removedResources: p.removed ?? [],
    revisionComplete: p.complete ?? false,
  };
}

/** The digest the control plane expects for a node holding `resources` — computed from common/ only. */
export function expectedDigest(resources: Iterable<EncodedResource>): string {
  const entries: string[] = [];
  for (const r of resources)
    entries.push(...entriesOfResource(decodeResource(r.typeUrl, r.payload)));
  return Digest.of(entries).toString();
}

/** The digest entries of `resources`, as the control plane computes them. */
export function entriesOf(resources: Iterable<EncodedResource>): string[] {
  const entries: string[] = [];
  for (const r of resources)
    entries.push(...entriesOfResource(decodeResource(r.typeUrl, r.payload)));
  return entries;
}
