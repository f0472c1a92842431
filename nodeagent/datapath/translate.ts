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
  type ServiceImport,
} from '../../proto/index.js';
import {
  copyPolicyKey,
  copyPolicyRecord,
  endpointName,
  policyKeyId,
  serviceName,
} from './entries.js';
import { alreadyHeld, claimedTwice } from './claims.js';
import type { Rejection } from './errors.js';
import { IpcacheTranslation } from './ipcache-translation.js';
import { PolicyKeyIndex, packable } from './policy-key-set.js';
import type { DatapathChange, EndpointRecord, PolicyMapChange, PolicyRecord } from './types.js';

/** A resource a revision adds or replaces; `before` is the held value it replaces. */
export interface ResourceUpdate {
  typeUrl: ResourceType;
  name: string;
  version: string;
  before: ResourceValue | undefined;
  /** an ipcache shard as received is ShardBytes: what the store keeps of it */
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

/** One kind's keys in the touched resources, before and after; made only for a kind the delta touches. */
interface KindKeys<T> {
  old: Map<string, Owned<T>>;
  next: Map<string, Owned<T>>;
}

interface TouchedKeys {
  endpoint?: KindKeys<EndpointPolicy>;
  service?: KindKeys<string>;
  /** the services' records by key, for upserts */
  serviceValues?: Map<string, ServiceImport>;
}

/**
 * The names of the resources the delta touches, per kind: built on first
 * need, which is only a key held by a resource other than its claimant.
 */
class TouchedNames {
  readonly #delta: ResourceDelta;
  #names: Record<Kind, Set<string>> | undefined;

  constructor(delta: ResourceDelta) {
    this.#delta = delta;
  }

  has(kind: Kind, name: string): boolean {
    if (this.#names === undefined) {
      this.#names = { ipcache: new Set(), endpoint: new Set(), service: new Set() };
      for (const u of this.#delta.updates) this.#names[kindOf(u.typeUrl)].add(u.name);
      for (const r of this.#delta.removals) this.#names[kindOf(r.typeUrl)].add(r.name);
    }
    return this.#names[kind].has(name);
  }
}

/**
 * Resources delta -> entry-level datapath change. Pure; work is proportional
 * to the size of the resources the delta touches. Emits only entries whose
 * value changes, so a resource re-sent unchanged or a key moving between two
 * resources (an ipcache prefix changing shard) writes nothing. Every agent
 * runs this for every revision, most of which replace one ipcache shard:
 * shards are compared entry by entry (`IpcacheTranslation`), and maps are
 * built only for the other kinds the delta touches.
 */
export function translateDelta(delta: ResourceDelta, owners: KeyOwners): TranslateResult {
  const rejections: Rejection[] = [];
  const touched = new TouchedNames(delta);
  const ipcache = new IpcacheTranslation(rejections);
  // Keys of the other touched resources before and after. Held state was valid, so
  // `before` values cannot clash; `after` values are checked here.
  const keys: TouchedKeys = {};
  for (const u of delta.updates) {
    if (u.after.typeUrl === TYPE_IPCACHE) {
      ipcache.step(u.name, u.before?.typeUrl === TYPE_IPCACHE ? u.before : undefined, u.after);
    } else if (u.before !== undefined) addOld(keys, u.name, u.before);
  }
  for (const r of delta.removals) {
    if (r.before.typeUrl === TYPE_IPCACHE) ipcache.step(r.name, r.before, undefined);
    else addOld(keys, r.name, r.before);
  }
  ipcache.finish(owners, (name) => touched.has('ipcache', name));

  for (const { name, after: value } of delta.updates) {
    switch (value.typeUrl) {
      case TYPE_IPCACHE:
        break;
      case TYPE_ENDPOINT: {
        const ep = (keys.endpoint ??= newKindKeys());
        const key = endpointName(value.value);
        const owned = { resource: name, value: value.value };
        const held = owners.endpointOwner(key);
        claim(rejections, ep.next, key, owned, 'endpoint', held, touched, 'endpoint');
        break;
      }
      case TYPE_SERVICE: {
        const svc = (keys.service ??= newKindKeys());
        const key = serviceName(value.value);
        const owned = { resource: name, value: serviceEntry(value.value) };
        const held = owners.serviceOwner(key);
        claim(rejections, svc.next, key, owned, 'service', held, touched, 'service');
        (keys.serviceValues ??= new Map()).set(key, value.value);
        break;
      }
    }
  }

  const change: DatapathChange = {
    ipcache: { upserts: ipcache.upserts, deletes: ipcache.deletes },
    endpoints: { upserts: [], deletes: [] },
    policies: [],
    services: { upserts: [], deletes: [] },
  };

  const ep = keys.endpoint;
  if (ep !== undefined) {
    for (const key of ep.old.keys()) if (!ep.next.has(key)) change.endpoints.deletes.push(key);
    for (const [key, n] of ep.next) {
      const old = ep.old.get(key)?.value;
      if (old === undefined || endpointEntry(old) !== endpointEntry(n.value)) {
        change.endpoints.upserts.push({ ...endpointRecord(n.value), resource: n.resource });
      }
      const pm = diffPolicies(key, n.resource, old, n.value, rejections);
      if (pm.upserts.length > 0 || pm.deletes.length > 0) change.policies.push(pm);
    }
  }

  const svc = keys.service;
  if (svc !== undefined) {
    for (const key of svc.old.keys()) if (!svc.next.has(key)) change.services.deletes.push(key);
    for (const [key, n] of svc.next) {
      if (svc.old.get(key)?.value !== n.value)
        change.services.upserts.push({ ...keys.serviceValues!.get(key)!, resource: n.resource });
    }
  }

  return rejections.length > 0 ? { ok: false, rejections } : { ok: true, change };
}

type Kind = 'ipcache' | 'endpoint' | 'service';

function newKindKeys<T>(): KindKeys<T> {
  return { old: new Map(), next: new Map() };
}

/** Records the keys a resource held before the delta. */
function addOld(keys: TouchedKeys, name: string, value: ResourceValue): void {
  switch (value.typeUrl) {
    case TYPE_IPCACHE:
      break; // IpcacheTranslation's
    case TYPE_ENDPOINT:
      (keys.endpoint ??= newKindKeys()).old.set(endpointName(value.value), {
        resource: name,
        value: value.value,
      });
      break;
    case TYPE_SERVICE:
      (keys.service ??= newKindKeys()).old.set(serviceName(value.value), {
        resource: name,
        value: serviceEntry(value.value),
      });
      break;
  }
}

function kindOf(typeUrl: ResourceType): Kind {
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
  touched: TouchedNames,
  kind: Kind,
): void {
  const other = map.get(key);
  if (other !== undefined) {
    rejections.push(claimedTwice(what, key, other.resource, owned.resource));
    return;
  }
  // A key held by a resource this revision does not touch stays there.
  if (held !== undefined && held !== owned.resource && !touched.has(kind, held)) {
    rejections.push(alreadyHeld(what, key, owned.resource, held));
    return;
  }
  map.set(key, owned);
}
