import { isIP } from 'node:net';
import { Direction, Verdict } from '../../proto/index.js';
import type { Rejection } from './errors.js';
import { endpointName, policyKeyId, serviceName } from './entries.js';
import { PolicyKeyIndex, packable } from './policy-key-set.js';
import type { DatapathCapacity, DatapathChange, PolicyKey, PolicyRecord } from './types.js';

/**
 * The checks every backend runs before touching its maps, so that a change
 * either fits entirely or is refused with nothing written (all-or-nothing
 * starts with refusing early; the eBPF backend still needs its own rollback
 * for kernel write failures). Pure: the backend supplies a read-only view of
 * what it holds.
 */
export interface DatapathView {
  readonly ipcacheCount: number;
  readonly endpointCount: number;
  hasIpcache(prefix: string): boolean;
  hasEndpoint(endpoint: string): boolean;
  policyCount(endpoint: string): number;
  hasPolicy(endpoint: string, key: PolicyKey): boolean;
}

/**
 * Every problem with `change` against `view` and `capacity`; empty when it
 * can be applied.
 */
export function checkChange(
  change: DatapathChange,
  view: DatapathView,
  capacity: DatapathCapacity,
): Rejection[] {
  const scans = change.policies.map((pm) => scanPolicy(pm.upserts, pm.deletes));
  const problems = checkValues(change, scans);
  problems.push(...checkKeys(change, view, scans));
  // Capacity is only meaningful for a structurally valid change.
  if (problems.length > 0) return problems;
  return checkCapacity(change, view, capacity);
}

function invalid(resource: string, message: string): Rejection {
  return { code: 'VALIDATION', message, resourceNames: [resource] };
}

function isPrefix(prefix: string): boolean {
  const slash = prefix.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(prefix.slice(0, slash));
  const lenText = prefix.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(lenText)) return false;
  return Number(lenText) <= (family === 4 ? 32 : 128);
}

const isPort = (p: number): boolean => Number.isInteger(p) && p >= 0 && p <= 65535;

/** What one pass over a policy map's change found (see scanPolicy). */
interface PolicyScan {
  /** indexes of upserts checkPolicyRecord finds something wrong with */
  invalid: number[];
  /** each repeat of a key, upserts then deletes in order; undefined when some key cannot be packed */
  repeated: PolicyKey[] | undefined;
}

/**
 * One pass over a policy map's upserts (then its deletes): which records
 * checkPolicyRecord would find wrong, and which keys repeat — with packed
 * numbers (`PolicyKeyIndex`), no string per key; `repeated` is undefined when
 * a key cannot be packed (`packable`), and the caller then checks with
 * strings. A revision can carry 100,000 entries, checked once by code the
 * JIT has mostly not optimized yet (the records' hidden classes are new
 * each revision): each record's fields are read once, in one plain loop.
 */
function scanPolicy(upserts: readonly PolicyRecord[], deletes: readonly PolicyKey[]): PolicyScan {
  const invalid: number[] = [];
  const repeated: PolicyKey[] = [];
  let keys: PolicyKeyIndex | undefined = new PolicyKeyIndex(upserts.length + deletes.length);
  for (let i = 0; i < upserts.length; i++) {
    const e = upserts[i]!;
    const direction = e.direction;
    const protocol = e.protocol;
    const portLow = e.portLow;
    const portHigh = e.portHigh;
    const verdict = e.verdict;
    if (!(
      (direction === Direction.DIRECTION_INGRESS || direction === Direction.DIRECTION_EGRESS) &&
      (verdict === Verdict.VERDICT_ALLOW ||
        verdict === Verdict.VERDICT_DENY ||
        verdict === Verdict.VERDICT_AUDIT) &&
      Number.isInteger(protocol) &&
      protocol >= 0 &&
      protocol <= 255 &&
      isPort(portLow) &&
      isPort(portHigh) &&
      (portHigh === 0 || portHigh >= portLow) &&
      (protocol !== 0 || (portLow === 0 && portHigh === 0))
    ))
      invalid.push(i);
    if (keys === undefined) continue;
    if (!packable(e)) keys = undefined;
    else if (keys.set(e, i) >= 0) repeated.push(e);
  }
  for (let i = 0; i < deletes.length && keys !== undefined; i++) {
    const k = deletes[i]!;
    if (!packable(k)) keys = undefined;
    else if (keys.set(k, upserts.length + i) >= 0) repeated.push(k);
  }
  return { invalid, repeated: keys === undefined ? undefined : repeated };
}

function checkPolicyRecord(resource: string, endpoint: string, e: PolicyRecord): Rejection[] {
  const out: Rejection[] = [];
  const where = `policy entry of ${endpoint}`;
  if (e.direction !== Direction.DIRECTION_INGRESS && e.direction !== Direction.DIRECTION_EGRESS) {
    out.push(invalid(resource, `${where}: direction ${e.direction} is not INGRESS or EGRESS`));
  }
  if (
    e.verdict !== Verdict.VERDICT_ALLOW &&
    e.verdict !== Verdict.VERDICT_DENY &&
    e.verdict !== Verdict.VERDICT_AUDIT
  ) {
    out.push(invalid(resource, `${where}: verdict ${e.verdict} is not ALLOW, DENY or AUDIT`));
  }
  if (!Number.isInteger(e.protocol) || e.protocol < 0 || e.protocol > 255) {
    out.push(invalid(resource, `${where}: protocol ${e.protocol} is not 0..255`));
  }
  // portHigh 0 means "single port portLow" or "any" — only an explicit inverted range is wrong.
  if (!isPort(e.portLow) || !isPort(e.portHigh) || (e.portHigh !== 0 && e.portHigh < e.portLow)) {
    out.push(invalid(resource, `${where}: port range ${e.portLow}-${e.portHigh} is invalid`));
  } else if (e.protocol === 0 && (e.portLow !== 0 || e.portHigh !== 0)) {
    // common/policy-map.ts: a port always names its protocol (ANY expands to TCP, UDP, SCTP).
    out.push(
      invalid(resource, `${where}: port ${e.portLow}-${e.portHigh} needs a protocol, not ANY`),
    );
  }
  return out;
}

/** Values a map cannot hold. */
function checkValues(change: DatapathChange, scans: readonly PolicyScan[]): Rejection[] {
  const out: Rejection[] = [];
  for (const u of change.ipcache.upserts) {
    if (!isPrefix(u.prefix))
      out.push(invalid(u.resource, `ipcache prefix "${u.prefix}" is not a CIDR`));
  }
  for (const ep of change.endpoints.upserts) {
    const name = endpointName(ep);
    if (ep.cluster === '' || ep.namespace === '' || ep.name === '') {
      out.push(invalid(ep.resource, `endpoint "${name}" needs a cluster, namespace and name`));
    }
    for (const ip of ep.ips) {
      if (isIP(ip) === 0)
        out.push(invalid(ep.resource, `endpoint ${name}: "${ip}" is not an IP address`));
    }
    for (const p of ep.namedPorts) {
      if (!isPort(p.port))
        out.push(
          invalid(ep.resource, `endpoint ${name}: named port ${p.name} ${p.port} is invalid`),
        );
    }
  }
  change.policies.forEach((pm, i) => {
    for (const at of scans[i]!.invalid)
      out.push(...checkPolicyRecord(pm.resource, pm.endpoint, pm.upserts[at]!));
  });
  for (const s of change.services.upserts) {
    if (s.namespace === '' || s.name === '')
      out.push(invalid(s.resource, 'service needs a namespace and name'));
  }
  return out;
}

/**
 * Each key at most once per table; policy changes name endpoints that exist
 * afterwards. Most revisions write one ipcache key and nothing else (every
 * agent's hot path): tables they do not write get no sets.
 */
function checkKeys(
  change: DatapathChange,
  view: DatapathView,
  scans: readonly PolicyScan[],
): Rejection[] {
  const out: Rejection[] = [];
  const { ipcache, endpoints, services } = change;
  onceEach(out, ipcache.upserts, prefixOf, ipcache.deletes, 'ipcache prefix');

  if (endpoints.upserts.length + endpoints.deletes.length + change.policies.length > 0) {
    const upserted = new Set<string>();
    for (const ep of endpoints.upserts)
      once(out, upserted, endpointName(ep), ep.resource, 'endpoint');
    const deleted = new Set<string>();
    for (const d of endpoints.deletes) {
      if (upserted.has(d)) out.push(invalid('', `endpoint "${d}" is both upserted and deleted`));
      once(out, deleted, d, '', 'endpoint');
    }

    const policyMaps = new Set<string>();
    for (const [i, pm] of change.policies.entries()) {
      once(out, policyMaps, pm.endpoint, pm.resource, 'policy map of endpoint');
      if (
        deleted.has(pm.endpoint) ||
        (!upserted.has(pm.endpoint) && !view.hasEndpoint(pm.endpoint))
      ) {
        out.push(
          invalid(
            pm.resource,
            `policy entries for endpoint "${pm.endpoint}", which will not exist`,
          ),
        );
      }
      const what = `policy key of ${pm.endpoint}`;
      const repeated = scans[i]!.repeated;
      if (repeated !== undefined) {
        for (const k of repeated) out.push(repeatedKey(policyKeyId(k), pm.resource, what));
      } else {
        // A field that cannot be packed: an id string per key.
        const keys = new Set<string>();
        for (const k of pm.upserts) once(out, keys, policyKeyId(k), pm.resource, what);
        for (const k of pm.deletes) once(out, keys, policyKeyId(k), pm.resource, what);
      }
    }
  }

  onceEach(out, services.upserts, serviceName, services.deletes, 'service');
  // Deletes carry no resource; drop the empty names so NACKs list only real resources.
  if (out.length === 0) return out;
  return out.map((r) => ({ ...r, resourceNames: r.resourceNames.filter((n) => n !== '') }));
}

// Module functions, not closures made per call: a hot path (every revision of every agent).
function repeatedKey(key: string, resource: string, what: string): Rejection {
  return invalid(resource, `${what} "${key}" appears more than once in one change`);
}

/**
 * Each key of one table (its upserts' keys, then its deletes) at most once.
 * A table the change writes one key of cannot repeat it: no set for it.
 */
function onceEach<T extends { resource: string }>(
  out: Rejection[],
  upserts: readonly T[],
  keyOf: (u: T) => string,
  deletes: readonly string[],
  what: string,
): void {
  if (upserts.length + deletes.length < 2) return;
  const seen = new Set<string>();
  for (const u of upserts) once(out, seen, keyOf(u), u.resource, what);
  for (const d of deletes) once(out, seen, d, '', what);
}

const prefixOf = (u: { prefix: string }): string => u.prefix;

/** Adds `key` to `seen`; a key already there is a rejection in `out`. */
function once(
  out: Rejection[],
  seen: Set<string>,
  key: string,
  resource: string,
  what: string,
): void {
  if (seen.has(key)) out.push(repeatedKey(key, resource, what));
  seen.add(key);
}

function checkCapacity(
  change: DatapathChange,
  view: DatapathView,
  capacity: DatapathCapacity,
): Rejection[] {
  const out: Rejection[] = [];
  const { ipcache, endpoints } = change;
  // Counted, not filtered: the resources to name are collected only for a refusal.
  let ipcacheAfter = view.ipcacheCount;
  for (const p of ipcache.deletes) if (view.hasIpcache(p)) ipcacheAfter -= 1;
  for (const u of ipcache.upserts) if (!view.hasIpcache(u.prefix)) ipcacheAfter += 1;
  if (ipcacheAfter > capacity.ipcacheEntries) {
    out.push({
      code: 'CAPACITY',
      message: `ipcache would hold ${ipcacheAfter} entries, capacity is ${capacity.ipcacheEntries}`,
      resourceNames: unique(
        ipcache.upserts.filter((u) => !view.hasIpcache(u.prefix)).map((u) => u.resource),
      ),
    });
  }

  let endpointsAfter = view.endpointCount;
  for (const e of endpoints.deletes) if (view.hasEndpoint(e)) endpointsAfter -= 1;
  for (const ep of endpoints.upserts) if (!view.hasEndpoint(endpointName(ep))) endpointsAfter += 1;
  if (endpointsAfter > capacity.endpoints) {
    out.push({
      code: 'CAPACITY',
      message: `endpoint table would hold ${endpointsAfter} endpoints, capacity is ${capacity.endpoints}`,
      resourceNames: unique(
        endpoints.upserts
          .filter((ep) => !view.hasEndpoint(endpointName(ep)))
          .map((ep) => ep.resource),
      ),
    });
  }

  for (const pm of change.policies) {
    const held = view.hasEndpoint(pm.endpoint);
    let after = pm.upserts.length;
    if (held) {
      after = view.policyCount(pm.endpoint);
      for (const k of pm.deletes) if (view.hasPolicy(pm.endpoint, k)) after -= 1;
      for (const k of pm.upserts) if (!view.hasPolicy(pm.endpoint, k)) after += 1;
    }
    if (after > capacity.policyEntriesPerEndpoint) {
      out.push({
        code: 'CAPACITY',
        message: `policy map of ${pm.endpoint} would hold ${after} entries, capacity is ${capacity.policyEntriesPerEndpoint}`,
        resourceNames: [pm.resource],
      });
    }
  }
  return out;
}

function unique(names: string[]): string[] {
  return [...new Set(names)].sort();
}
