import type { PolicyKind, PolicyObject } from '../../../common/index.js';
import type { Field } from './field.js';
import type { Metadata } from './metadata.js';

/**
 * Policies are kept as written; their rules are validated by the policy
 * compiler. Here only the envelope is checked. PolicyObject.spec holds:
 * NetworkPolicy: `spec` (a map); Cilium kinds: `spec` (a map, one rule) or
 * `specs` (a list of rules) — whichever the manifest has, so a consumer tells
 * them apart with Array.isArray and field paths in its errors stay true.
 */
export function convertPolicy(
  root: Field,
  meta: Metadata,
  kind: PolicyKind,
  cluster: string,
): PolicyObject | undefined {
  const spec = kind === 'NetworkPolicy' ? readNetworkPolicySpec(root) : readCiliumRules(root);
  if (spec === undefined) return undefined;
  const policy: PolicyObject = {
    kind,
    cluster,
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    spec,
  };
  if (meta.creationTimestamp !== undefined) policy.creationTimestamp = meta.creationTimestamp;
  return policy;
}

function readNetworkPolicySpec(root: Field): unknown {
  return root.child('spec').record({ required: true });
}

function readCiliumRules(root: Field): unknown {
  const spec = root.child('spec');
  const specs = root.child('specs');
  if (spec.present && specs.present) {
    specs.error(
      'spec and specs are both set; meshplane takes one of them per policy (move spec into specs)',
    );
    return undefined;
  }
  if (specs.present) {
    const rules = specs.items();
    if (Array.isArray(specs.value) && rules.length === 0)
      specs.error('must hold at least one rule');
    const valid = rules.every((rule) => rule.record({ required: true }) !== undefined);
    return valid && rules.length > 0 ? specs.value : undefined;
  }
  if (!spec.present) {
    spec.error('is required (or specs)');
    return undefined;
  }
  return spec.record();
}
