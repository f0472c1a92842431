import {
  Digest,
  PolicyEntryHasher,
  endpointEntry,
  endpointName,
  ipcacheEntry,
  policyEntry,
  serviceEntry,
} from '../../common/index.js';
import type { EndpointPolicy } from '../../proto/index.js';
import type {
  DatapathContents,
  EndpointRecord,
  PolicyKey,
  PolicyRecord,
  ServiceRecord,
} from './types.js';

/**
 * Key encodings and digest entries of datapath records, shared by every
 * backend so the emulated and the eBPF datapath agree with the control plane
 * (which computes the same entries from resources via common/digest.ts).
 */

export { endpointName };

export function serviceName(svc: { namespace: string; name: string }): string {
  return `${svc.namespace}/${svc.name}`;
}

/** A policy record's own fields, nothing else (a decoded entry's or a caller's object may carry more). */
export function copyPolicyRecord(e: PolicyRecord): PolicyRecord {
  // One literal, not a spread of copyPolicyKey: a spread object gets another
  // hidden class than the records built elsewhere, which turned the map
  // writers' property reads polymorphic and cost ~3x on a 100k revision.
  return {
    direction: e.direction,
    identity: e.identity,
    protocol: e.protocol,
    portLow: e.portLow,
    portHigh: e.portHigh,
    verdict: e.verdict,
  };
}

/** A policy record's key fields. */
export function copyPolicyKey(k: PolicyKey): PolicyKey {
  return {
    direction: k.direction,
    identity: k.identity,
    protocol: k.protocol,
    portLow: k.portLow,
    portHigh: k.portHigh,
  };
}

/** A policy key as one string, for use as a Map key. */
export function policyKeyId(k: PolicyKey): string {
  return `${k.direction}|${k.identity}|${k.protocol}|${k.portLow}|${k.portHigh}`;
}

export function endpointDigestEntry(ep: EndpointRecord): string {
  return endpointEntry(endpointPolicyOf(ep, []));
}

/** The EndpointPolicy resource value an endpoint record and its entries come from. */
export function endpointPolicyOf(ep: EndpointRecord, entries: PolicyRecord[]): EndpointPolicy {
  return {
    cluster: ep.cluster,
    namespace: ep.namespace,
    name: ep.name,
    identity: ep.identity,
    ips: ep.ips,
    namedPorts: ep.namedPorts,
    ingressEnforced: ep.ingressEnforced,
    egressEnforced: ep.egressEnforced,
    entries,
  };
}

export function policyDigestEntry(endpoint: string, e: PolicyRecord): string {
  return policyEntry(endpoint, e);
}

export function ipcacheDigestEntry(prefix: string, identity: number): string {
  return ipcacheEntry(prefix, identity);
}

export function serviceDigestEntry(svc: ServiceRecord): string {
  return serviceEntry(svc);
}

/** Every digest entry of a full read. */
export function* entriesOfContents(c: DatapathContents): Generator<string> {
  for (const e of c.ipcache) yield ipcacheEntry(e.prefix, e.identity);
  for (const ep of c.endpoints) yield endpointDigestEntry(ep);
  for (const p of c.policies) for (const e of p.entries) yield policyEntry(p.endpoint, e);
  for (const s of c.services) yield serviceEntry(s);
}

/**
 * The digest of a full read: the same as `Digest.of(entriesOfContents(c))`,
 * with the policy entries hashed from their fields (`PolicyEntryHasher`)
 * rather than from a string each (a full read can hold 100,000 of them).
 */
export function contentsDigest(c: DatapathContents): Digest {
  const d = new Digest();
  for (const e of c.ipcache) d.add(ipcacheEntry(e.prefix, e.identity));
  for (const ep of c.endpoints) d.add(endpointDigestEntry(ep));
  for (const p of c.policies) {
    const h = new PolicyEntryHasher(p.endpoint);
    for (const e of p.entries)
      d.addHashed(h.hash(e.direction, e.identity, e.protocol, e.portLow, e.portHigh, e.verdict));
  }
  for (const s of c.services) d.add(serviceEntry(s));
  return d;
}

export function digestOfContents(c: DatapathContents): string {
  return contentsDigest(c).toString();
}
