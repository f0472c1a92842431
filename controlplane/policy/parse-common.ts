import { protocolNumber } from '../../common/index.js';
import type { CidrBlock, Prefix } from './cidr.js';
import { parsePrefix, prefixContains } from './cidr.js';
import type { Checker } from './checker.js';
import type { PortItem } from './model.js';
import type { Operator, Requirement, Selector } from './selector.js';
import { CLUSTER_KEY, makeSelector, normalizeKey } from './selector.js';

const OPERATORS: readonly Operator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
const CLUSTER_LABEL = CLUSTER_KEY.slice('k8s:'.length);

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** `cilium.io/cluster`, `io.cilium.k8s.cluster`, ... : a key that was probably meant to constrain the cluster. */
export function looksLikeClusterKey(rawKey: string): boolean {
  const key = normalizeKey(rawKey).replace(/^[a-z0-9]+:/, '');
  if (key === CLUSTER_LABEL) return false;
  const lower = key.toLowerCase();
  return (
    editDistance(lower, CLUSTER_LABEL) <= 4 ||
    (lower.includes('cluster') && (lower.includes('cilium') || lower.includes('policy')))
  );
}

/** How selector keys map to identity label keys: as written, or as namespace labels. */
export type KeyMapping = 'identity' | 'namespace';

function mapKey(raw: string, mapping: KeyMapping): string {
  if (mapping === 'namespace')
    return `k8s:io.cilium.k8s.namespace.labels.${raw.replace(/^k8s:/, '')}`;
  return normalizeKey(raw);
}

/** A Kubernetes/Cilium label selector (matchLabels, matchExpressions); `{}` selects everything. */
export function parseSelector(at: Checker, mapping: KeyMapping = 'identity'): Selector | undefined {
  const m = at.map();
  if (m === undefined) return undefined;
  at.keys(['matchLabels', 'matchExpressions']);
  let ok = true;
  const reqs: Requirement[] = [];
  const checkKey = (c: Checker, raw: string): string | undefined => {
    if (raw === '' || /\s/.test(raw)) {
      ok = false;
      return c.error(`invalid label key "${raw}"`);
    }
    if (/^[a-z]+:/.test(raw) && !/^(k8s|any|reserved):/.test(raw)) {
      ok = false;
      return c.error(`label source of "${raw}" is not k8s, any or reserved`);
    }
    if (mapping === 'identity' && looksLikeClusterKey(raw)) {
      c.warn(`"${raw}" looks like a cluster label; the cluster label is ${CLUSTER_LABEL}`);
    }
    return mapKey(raw, mapping);
  };
  const labels = at.at('matchLabels');
  for (const [k] of Object.entries(labels.map() ?? {})) {
    const c = labels.at(k);
    const key = checkKey(c, k);
    const value = c.string();
    if (value === undefined) {
      ok = false;
      if (!c.present) c.error('must be a string');
    }
    if (key !== undefined && value !== undefined)
      reqs.push({ key, operator: 'In', values: [value] });
  }
  for (const e of at.at('matchExpressions').list() ?? []) {
    e.keys(['key', 'operator', 'values']);
    const rawKey = e.at('key').string();
    const op = e.at('operator').string();
    const valuesAt = e.at('values');
    const values = (valuesAt.list() ?? []).map((v) => v.string());
    if (rawKey === undefined) {
      ok = false;
      e.at('key').error('is required');
      continue;
    }
    const key = checkKey(e.at('key'), rawKey);
    if (op === undefined || !(OPERATORS as readonly string[]).includes(op)) {
      ok = false;
      e.at('operator').error(
        `must be one of ${OPERATORS.join(', ')}${op === undefined ? '' : `, got "${op}"`}`,
      );
      continue;
    }
    const operator = op as Operator;
    const hasValues =
      valuesAt.present && Array.isArray(valuesAt.value) && valuesAt.value.length > 0;
    if ((operator === 'In' || operator === 'NotIn') && !hasValues) {
      ok = false;
      valuesAt.error(`must list at least one value for ${operator}`);
    } else if ((operator === 'Exists' || operator === 'DoesNotExist') && hasValues) {
      ok = false;
      valuesAt.error(`must be empty for ${operator}`);
    }
    if (values.some((v) => v === undefined)) ok = false;
    if (key !== undefined)
      reqs.push({ key, operator, values: values.filter((v) => v !== undefined) });
  }
  return ok ? makeSelector(reqs) : undefined;
}

export function parseCidr(at: Checker, text: string | undefined): Prefix | undefined {
  if (text === undefined) return at.present ? undefined : at.error('is required');
  const p = parsePrefix(text);
  return 'error' in p ? at.error(p.error) : p;
}

/** `{cidr, except}` (ipBlock, CIDRSet); excepts must lie inside the block. */
export function parseBlock(
  at: Checker,
  unsupported: readonly string[] = [],
): CidrBlock | undefined {
  if (at.map() === undefined) return at.present ? undefined : at.error('is required');
  at.keys(['cidr', 'except'], unsupported);
  const cidr = parseCidr(at.at('cidr'), at.at('cidr').string());
  const except: Prefix[] = [];
  let ok = cidr !== undefined;
  for (const e of at.at('except').list() ?? []) {
    const p = parseCidr(e, e.string());
    if (p === undefined) ok = false;
    else if (cidr !== undefined && !prefixContains(cidr, p)) {
      ok = false;
      e.error(`${p.text} is not inside ${cidr.text}`);
    } else if (cidr !== undefined && p.len === cidr.len) {
      ok = false;
      e.error(`${p.text} excepts the whole block`);
    } else except.push(p);
  }
  return ok && cidr !== undefined ? { cidr, except } : undefined;
}

const SERVICE_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

/**
 * One port: a number 1..65535 (or 0/absent = every port), or a container port
 * name; `endPort` makes a range. `defaultProtocol` is TCP for Kubernetes and
 * ANY for Cilium; a number with ANY becomes TCP, UDP and SCTP (common/policy-map.ts).
 */
export function parsePort(
  at: Checker,
  opts: { defaultProtocol: 'TCP' | 'ANY'; allowAny: boolean },
): PortItem[] | undefined {
  const protoAt = at.at('protocol');
  const protoText = protoAt.string() ?? opts.defaultProtocol;
  const protocol = protocolNumber(protoText);
  const allowed = opts.allowAny ? 'TCP, UDP, SCTP or ANY' : 'TCP, UDP or SCTP';
  if (
    protocol === undefined ||
    (protocol === 0 && !opts.allowAny) ||
    protoText !== protoText.toUpperCase()
  ) {
    return protoAt.error(`must be ${allowed}, got "${protoText}"`);
  }
  const portAt = at.at('port');
  const endAt = at.at('endPort');
  let raw: unknown = portAt.value ?? undefined;
  if (typeof raw === 'string' && /^\d+$/.test(raw)) raw = Number(raw);
  const end = endAt.present ? endAt.value : undefined;
  if (raw === undefined || raw === 0) {
    if (end !== undefined) return endAt.error('needs a numeric port');
    return [{ kind: 'number', protocol, low: 0, high: 0 }];
  }
  if (typeof raw === 'string') {
    if (!SERVICE_NAME.test(raw))
      return portAt.error(`"${raw}" is neither a port number nor a valid port name`);
    if (end !== undefined) return endAt.error('needs a numeric port, not a named one');
    return [{ kind: 'named', protocol, name: raw }];
  }
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1 || raw > 65535) {
    return portAt.error(
      `must be a port 1..65535 or a port name, got ${JSON.stringify(portAt.value)}`,
    );
  }
  let high = raw;
  if (end !== undefined) {
    if (typeof end !== 'number' || !Number.isInteger(end) || end < raw || end > 65535) {
      return endAt.error(`must be an integer ${raw}..65535, got ${JSON.stringify(end)}`);
    }
    high = end;
  }
  const protocols = protocol === 0 ? [6, 17, 132] : [protocol];
  return protocols.map((p) => ({ kind: 'number', protocol: p, low: raw, high }));
}
