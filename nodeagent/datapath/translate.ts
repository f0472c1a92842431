import {
  endpointEntry,
  serviceEntry,
  type ResourceType,
  type ResourceValue,
} from '../../common/index.js';
import {
  TYPE_ENDPOINT,
  TYPE_IPCACHE,
  TYPE_SERVICE,
  type EndpointPolicy,
} from '../../proto/index.js';
import {
  copyPolicyKey,
  copyPolicyRecord,
  endpointName,
  policyKeyId,
  serviceName,
} from './entries.js';
import type { Rejection } from './errors.js';
import { PolicyKeyIndex, packable } from './policy-key-set.js';
import type { DatapathChange, EndpointRecord, PolicyMapChange, PolicyRecord } from './types.js';

/** A resource a revision adds or replaces; `before` is the held value it replaces. */
export interface ResourceUpdate {
  typeUrl: ResourceType;
  name: string;
  version: string;
  before: ResourceValue | undefined;
  after: ResourceValue;
}

export interface ResourceRemoval {
  typeUrl: ResourceType;
  name: string;
  before: ResourceValue;
}

/** One revision as resources: names are unique per type across updates and removals. */
export interface ResourceDelta {
  updates: ResourceUpdate[];
  removals: ResourceRemoval[];
}

/**
 * Which held resource owns a datapath key now (the name within its type), or
 * undefined. Lets the translator catch two resources claiming the same key
 * without reading the whole held state.
 */
export interface KeyOwners {
  ipcacheOwner(prefix: string): string | undefined;
  endpointOwner(endpoint: string): string | undefined;
  serviceOwner(service: string): string | undefined;
}

export type TranslateResult =
  { ok: true; change: DatapathChange } | { ok: false; rejections: Rejection[] };

interface Owned<T> {
  resource: string;
  value: T;
}

/**
 * Resources delta -> entry-level datapath change. Pure; work is proportional
 * to the size of the resources the delta touches. Emits only entries whose
 * value changes, so a resource re-sent unchanged or a key moving between two
 * resources (an ipcache prefix changing shard) writes nothing.
 */
export function translateDelta(delta: ResourceDelta, owners: KeyOwners): TranslateResult {
  const rejections: Rejection[] = [];
  const touched = {
    ipcache: new Set<string>(),
    endpoint: new Set<string>(),
    service: new Set<string>(),
  };
  const olds: { name: string; value: ResourceValue }[] = [];
  const news: { name: string; value: ResourceValue }[] = [];
  for (const u of delta.updates) {
    touched[kindOf(u.typeUrl)].add(u.name);
    if (u.before !== undefined) olds.push({ name: u.name, value: u.before });
    news.push({ name: u.name, value: u.after });
  }
  for (const r of delta.removals) {
    touched[kindOf(r.typeUrl)].add(r.name);
    olds.push({ name: r.name, value: r.before });
  }

  // Keys of the touched resources before and after. Held state was valid, so
  // `before` values cannot clash; `after` values are checked here.
  const oldIp = new Map<string, Owned<number>>();
  const newIp = new Map<string, Owned<number>>();
  const oldEp = new Map<string, Owned<EndpointPolicy>>();
  const newEp = new Map<string, Owned<EndpointPolicy>>();
  const oldSvc = new Map<string, Owned<string>>();
  const newSvc = new Map<string, Owned<string>>();
  const svcValues = new Map<string, ResourceValue & { typeUrl: typeof TYPE_SERVICE }>();

  for (const { name, value } of olds) {
    switch (value.typeUrl) {
      case TYPE_IPCACHE:
        for (const e of value.value.entries)
          oldIp.set(e.prefix, { resource: name, value: e.identity });
        break;
      case TYPE_ENDPOINT:
        oldEp.set(endpointName(value.value), { resource: name, value: value.value });
        break;
      case TYPE_SERVICE:
        oldSvc.set(serviceName(value.value), { resource: name, value: serviceEntry(value.value) });
        break;
    }
  }
  for (const { name, value } of news) {
    switch (value.typeUrl) {
      case TYPE_IPCACHE:
        for (const e of value.value.entries) {
          const owned = { resource: name, value: e.identity };
          // A prefix a touched resource held is that resource's (held state was valid): only
          // prefixes new to the touched resources need the store's index.
          const held = oldIp.get(e.prefix)?.resource ?? owners.ipcacheOwner(e.prefix);
          claim(rejections, newIp, e.prefix, owned, 'ipcache prefix', held, touched.ipcache);
        }
        break;
      case TYPE_ENDPOINT: {
        const key = endpointName(value.value);
        claim(
          rejections,
          newEp,
          key,
          { resource: name, value: value.value },
          'endpoint',
          owners.endpointOwner(key),
          touched.endpoint,
        );
        break;
      }
      case TYPE_SERVICE: {
        const key = serviceName(value.value);
        const owned = { resource: name, value: serviceEntry(value.value) };
        claim(rejections, newSvc, key, owned, 'service', owners.serviceOwner(key), touched.service);
        svcValues.set(key, value);
        break;
      }
    }
  }

  const change: DatapathChange = {
    ipcache: { upserts: [], deletes: [] },
    endpoints: { upserts: [], deletes: [] },
    policies: [],
    services: { upserts: [], deletes: [] },
  };

  for (const prefix of oldIp.keys()) if (!newIp.has(prefix)) change.ipcache.deletes.push(prefix);
  for (const [prefix, n] of newIp) {
    if (oldIp.get(prefix)?.value !== n.value)
      change.ipcache.upserts.push({ prefix, identity: n.value, resource: n.resource });
  }

  for (const key of oldEp.keys()) if (!newEp.has(key)) change.endpoints.deletes.push(key);
  for (const [key, n] of newEp) {
    const old = oldEp.get(key)?.value;
    if (old === undefined || endpointEntry(old) !== endpointEntry(n.value)) {
      change.endpoints.upserts.push({ ...endpointRecord(n.value), resource: n.resource });
    }
    const pm = diffPolicies(key, n.resource, old, n.value, rejections);
    if (pm.upserts.length > 0 || pm.deletes.length > 0) change.policies.push(pm);
  }

  for (const key of oldSvc.keys()) if (!newSvc.has(key)) change.services.deletes.push(key);
  for (const [key, n] of newSvc) {
    if (oldSvc.get(key)?.value !== n.value)
      change.services.upserts.push({ ...svcValues.get(key)!.value, resource: n.resource });
  }

  return rejections.length > 0 ? { ok: false, rejections } : { ok: true, change };
}

function kindOf(typeUrl: ResourceType): 'ipcache' | 'endpoint' | 'service' {
  switch (typeUrl) {
    case TYPE_IPCACHE:
      return 'ipcache';
    case TYPE_ENDPOINT:
      return 'endpoint';
    case TYPE_SERVICE:
      return 'service';
  }
}

function endpointRecord(ep: EndpointPolicy): EndpointRecord {
  return {
    cluster: ep.cluster,
    namespace: ep.namespace,
    name: ep.name,
    identity: ep.identity,
    ips: ep.ips,
    namedPorts: ep.namedPorts,
    ingressEnforced: ep.ingressEnforced,
    egressEnforced: ep.egressEnforced,
  };
}

/**
 * Entry-level diff of one endpoint's policy map; a new endpoint starts empty.
 * Keys are compared packed into numbers (`PolicyKeyIndex`) when every key of
 * both sides can be (a map of 100,000 entries: a string per key made this the
 * slowest step of a large revision), else as `policyKeyId` strings; both give
 * the same upserts, deletes and rejections, in the same order.
 */
function diffPolicies(
  endpoint: string,
  resource: string,
  before: EndpointPolicy | undefined,
  after: EndpointPolicy,
  rejections: Rejection[],
): PolicyMapChange {
  const olds = before?.entries ?? [];
  const news = after.entries;
  // Nothing held before (a new endpoint, a first sync): every entry is an upsert. A key
  // repeated among them is refused by the datapath's checks, which index every change's
  // keys anyway — indexing them here as well was half of translating a 100,000-entry one.
  if (olds.length === 0) return { endpoint, resource, upserts: news.slice(), deletes: [] };
  return allPackable(olds) && allPackable(news)
    ? diffPacked(endpoint, resource, olds, news, rejections)
    : diffById(endpoint, resource, olds, news, rejections);
}

function allPackable(entries: readonly PolicyRecord[]): boolean {
  for (let i = 0; i < entries.length; i++) if (!packable(entries[i]!)) return false;
  return true;
}

function repeatedEntry(endpoint: string, resource: string, e: PolicyRecord): Rejection {
  return {
    code: 'VALIDATION',
    message: `endpoint ${endpoint} has more than one policy entry for key ${policyKeyId(e)}`,
    resourceNames: [resource],
  };
}

function diffPacked(
  endpoint: string,
  resource: string,
  olds: readonly PolicyRecord[],
  news: readonly PolicyRecord[],
  rejections: Rejection[],
): PolicyMapChange {
  const pm: PolicyMapChange = { endpoint, resource, upserts: [], deletes: [] };
  const next = new PolicyKeyIndex(news.length);
  let repeated = false;
  for (let i = 0; i < news.length; i++) {
    if (next.set(news[i]!, i) < 0) continue;
    repeated = true;
    rejections.push(repeatedEntry(endpoint, resource, news[i]!));
  }
  // A repeated key refuses the revision: the diff is not used.
  if (repeated) return pm;
  const old = new PolicyKeyIndex(olds.length);
  for (let i = 0; i < olds.length; i++) old.set(olds[i]!, i);
  for (let i = 0; i < olds.length; i++)
    if (next.get(olds[i]!) < 0) pm.deletes.push(copyPolicyKey(olds[i]!));
  // The records themselves, not copies: decoded entries have exactly a
  // PolicyRecord's fields in its order (one hidden class with the records built
  // elsewhere), nothing mutates them, and a datapath copies what it keeps.
  // Copying 100,000 of them cost ~3-7 ms of a large revision.
  for (let i = 0; i < news.length; i++) {
    const e = news[i]!;
    const j = old.get(e);
    if (j < 0 || olds[j]!.verdict !== e.verdict) pm.upserts.push(e);
  }
  return pm;
}

function diffById(
  endpoint: string,
  resource: string,
  olds: readonly PolicyRecord[],
  news: readonly PolicyRecord[],
  rejections: Rejection[],
): PolicyMapChange {
  const old = new Map<string, PolicyRecord>();
  for (const e of olds) old.set(policyKeyId(e), e);
  const next = new Map<string, PolicyRecord>();
  for (const e of news) {
    const k = policyKeyId(e);
    if (next.has(k)) rejections.push(repeatedEntry(endpoint, resource, e));
    next.set(k, e);
  }
  const pm: PolicyMapChange = { endpoint, resource, upserts: [], deletes: [] };
  for (const [k, e] of old) if (!next.has(k)) pm.deletes.push(copyPolicyKey(e));
  for (const [k, e] of next)
    if (old.get(k)?.verdict !== e.verdict) pm.upserts.push(copyPolicyRecord(e));
  return pm;
}

/**
 * Records `owned` as the owner of `key` in `map`, or a rejection: the key is
 * claimed twice in this revision, or held by a resource it does not touch.
 * (A module function, not a closure made per revision: every agent's hot path.)
 */
function claim<T>(
  rejections: Rejection[],
  map: Map<string, Owned<T>>,
  key: string,
  owned: Owned<T>,
  what: string,
  held: string | undefined,
  touchedOfKind: Set<string>,
): void {
  const other = map.get(key);
  if (other !== undefined) {
    const names = [...new Set([other.resource, owned.resource])].sort();
    rejections.push({
      code: 'VALIDATION',
      message: `${what} "${key}" is claimed more than once (by ${names.join(', ')})`,
      resourceNames: names,
    });
    return;
  }
  // A key held by a resource this revision does not touch stays there.
  if (held !== undefined && held !== owned.resource && !touchedOfKind.has(held)) {
    rejections.push({
      code: 'VALIDATION',
      message: `${what} "${key}" of ${owned.resource} is already held by ${held}`,
      resourceNames: [owned.resource],
    });
    return;
  }
  map.set(key, owned);
}
