import { createHash } from 'node:crypto';
import { compareStrings } from '../../common/index.js';

/**
 * Security-relevant labels of an endpoint, as Cilium derives them: pod labels
 * with the `k8s:` source, the namespace, the namespace's labels, the service
 * account and the cluster. Labels that change on every rollout (and would
 * mint a new identity per ReplicaSet) are excluded, as in Cilium's default
 * label filter.
 */

export const LABEL_NAMESPACE = 'io.kubernetes.pod.namespace';
export const LABEL_NAMESPACE_LABELS = 'io.cilium.k8s.namespace.labels.';
export const LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';

/** Cilium's default exclusions: exact keys and key prefixes. */
export const DEFAULT_EXCLUDED_LABELS: readonly string[] = [
  'pod-template-hash',
  'pod-template-generation',
  'controller-revision-hash',
  'controller-uid',
  'job-name',
  'statefulset.kubernetes.io/pod-name',
  'apps.kubernetes.io/pod-index',
  'batch.kubernetes.io/controller-uid',
  'batch.kubernetes.io/job-completion-index',
  'batch.kubernetes.io/job-name',
];
export const DEFAULT_EXCLUDED_PREFIXES: readonly string[] = [
  'annotation.',
  'kubectl.kubernetes.io/',
  'io.kubernetes.',
  'beta.kubernetes.io/',
  'k8s.io/',
];

export interface LabelFilter {
  excluded: ReadonlySet<string>;
  excludedPrefixes: readonly string[];
}

export function defaultLabelFilter(): LabelFilter {
  return {
    excluded: new Set(DEFAULT_EXCLUDED_LABELS),
    excludedPrefixes: DEFAULT_EXCLUDED_PREFIXES,
  };
}

function keep(filter: LabelFilter, key: string): boolean {
  return !filter.excluded.has(key) && !filter.excludedPrefixes.some((p) => key.startsWith(p));
}

/** Identity labels, keys with their `k8s:` source, sorted. */
export function identityLabels(
  input: {
    cluster: string;
    namespace: string;
    podLabels: Record<string, string>;
    namespaceLabels: Record<string, string>;
    serviceAccount: string;
  },
  filter: LabelFilter,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.podLabels)) if (keep(filter, k)) out[`k8s:${k}`] = v;
  for (const [k, v] of Object.entries(input.namespaceLabels)) {
    if (keep(filter, k)) out[`k8s:${LABEL_NAMESPACE_LABELS}${k}`] = v;
  }
  out[`k8s:${LABEL_NAMESPACE}`] = input.namespace;
  out[`k8s:${LABEL_SERVICE_ACCOUNT}`] = input.serviceAccount;
  out[`k8s:${LABEL_CLUSTER}`] = input.cluster;
  return sortLabels(out);
}

export function sortLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).sort(([a], [b]) => compareStrings(a, b)));
}

/** Canonical text of a label set: sorted `key=value` lines. */
export function canonicalLabels(labels: Record<string, string>): string {
  return Object.entries(sortLabels(labels))
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

export function labelsHash(labels: Record<string, string>): string {
  return createHash('sha256').update(canonicalLabels(labels)).digest('hex');
}
