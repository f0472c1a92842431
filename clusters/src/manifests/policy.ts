import type { PolicyKind, PolicyObject } from '../../../common/index.js';
import { validatePolicy } from '../../../controlplane/policy/index.js';
import type { Field } from './field.js';
import type { Metadata } from './metadata.js';

/**
 * Policies are kept as written and validated in depth with the policy
 * engine's validator (every error with its field path; warnings such as
 * "L7 rules not enforced" are passed on). PolicyObject.spec holds:
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
  const annotations = readAnnotations(root.child('metadata').child('annotations'));
  if (annotations !== undefined) policy.annotations = annotations;
  let valid = true;
  for (const issue of validatePolicy(policy)) {
    const field =
      issue.field === undefined || issue.field === ''
        ? root.path
        : root.path === ''
          ? issue.field
          : `${root.path}.${issue.field}`;
    if (issue.severity === 'error') {
      valid = false;
      root.issues.error(field, issue.message);
    } else root.issues.warn(field, issue.message);
  }
  return valid ? policy : undefined;
}

/** metadata.annotations as a string map (only policies need them: the audit annotation). */
function readAnnotations(field: Field): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [key, value] of field.entries()) {
    const text = value.string({ required: true });
    if (text !== undefined) out[key] = text;
  }
  return Object.keys(out).length > 0 ? out : undefined;
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
