/**
 * Label selectors normalized to requirements over identity labels. Keys carry
 * their source (`k8s:`); a selector key without one gets `k8s:` (`any:` means
 * any source, and every identity label here is `k8s:` or `reserved:`).
 */

export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  key: string;
  operator: Operator;
  /** sorted, for In/NotIn */
  values: readonly string[];
}

export interface Selector {
  /** sorted by key, operator, values */
  requirements: readonly Requirement[];
  /** canonical text: equal selectors have equal keys (the selector cache's key) */
  key: string;
}

export const CLUSTER_KEY = 'k8s:io.cilium.k8s.policy.cluster';
export const NAMESPACE_KEY = 'k8s:io.kubernetes.pod.namespace';
export const NAMESPACE_LABELS_PREFIX = 'k8s:io.cilium.k8s.namespace.labels.';

/** `app` → `k8s:app`; `any:app` → `k8s:app`; `k8s:app` and `reserved:host` stay. */
export function normalizeKey(key: string): string {
  if (key.startsWith('any:')) return `k8s:${key.slice(4)}`;
  if (key.startsWith('k8s:') || key.startsWith('reserved:')) return key;
  return `k8s:${key}`;
}

function compareReq(a: Requirement, b: Requirement): number {
  const ka = `${a.key}\u0000${a.operator}\u0000${a.values.join('\u0001')}`;
  const kb = `${b.key}\u0000${b.operator}\u0000${b.values.join('\u0001')}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

export function makeSelector(requirements: Iterable<Requirement>): Selector {
  const seen = new Map<string, Requirement>();
  for (const r of requirements) {
    const values = [...new Set(r.values)].sort();
    const req: Requirement = { key: r.key, operator: r.operator, values };
    seen.set(`${req.key}\u0000${req.operator}\u0000${values.join('\u0001')}`, req);
  }
  const sorted = [...seen.values()].sort(compareReq);
  const key = sorted
    .map((r) => `${r.key} ${r.operator}${r.values.length > 0 ? ` (${r.values.join(',')})` : ''}`)
    .join('; ');
  return { requirements: sorted, key: `{${key}}` };
}

export function withRequirements(sel: Selector, extra: Iterable<Requirement>): Selector {
  return makeSelector([...sel.requirements, ...extra]);
}

export function constrains(sel: Selector, key: string): boolean {
  return sel.requirements.some((r) => r.key === key);
}

export function matchesRequirement(
  r: Requirement,
  labels: Readonly<Record<string, string>>,
): boolean {
  const value = Object.hasOwn(labels, r.key) ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'In':
      return value !== undefined && r.values.includes(value);
    case 'NotIn':
      return value === undefined || !r.values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
  }
}

export function matchesSelector(sel: Selector, labels: Readonly<Record<string, string>>): boolean {
  return sel.requirements.every((r) => matchesRequirement(r, labels));
}

/**
 * The `key=value` a matching identity must carry, used to index selectors:
 * the first single-value In requirement, preferring ones other than the
 * namespace and cluster (which many selectors share). Undefined: no such
 * requirement, test the selector against every identity.
 */
export function indexLabel(sel: Selector): { key: string; value: string } | undefined {
  const single = sel.requirements.filter((r) => r.operator === 'In' && r.values.length === 1);
  const rank = (r: Requirement): number =>
    r.key === CLUSTER_KEY ? 2 : r.key === NAMESPACE_KEY ? 1 : 0;
  const best = single.sort((a, b) => rank(a) - rank(b))[0];
  return best === undefined ? undefined : { key: best.key, value: best.values[0]! };
}
