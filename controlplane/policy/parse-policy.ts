import type { PolicyObject, Result, ValidationIssue } from '../../common/index.js';
import type { RawIssue } from './checker.js';
import { Checker } from './checker.js';
import type { PolicyUnit } from './model.js';
import { parseCiliumSpec } from './parse-cilium.js';
import type { ParsedSpec } from './parse-k8s.js';
import { parseNetworkPolicySpec } from './parse-k8s.js';
import type { PolicyRef } from './types.js';

export const AUDIT_ANNOTATION = 'policy.meshplane.io/audit';

export function policyRef(p: PolicyObject): PolicyRef {
  return { cluster: p.cluster, kind: p.kind, namespace: p.namespace, name: p.name };
}

/** `Kind/namespace/name` (or `Kind/name` when clusterwide), as the source names objects. */
export function describePolicy(ref: PolicyRef): string {
  return ref.namespace === ''
    ? `${ref.kind}/${ref.name}`
    : `${ref.kind}/${ref.namespace}/${ref.name}`;
}

export function policyId(ref: PolicyRef): string {
  return `${ref.cluster}/${ref.kind}/${ref.namespace}/${ref.name}`;
}

/**
 * Validates one policy in depth and converts it into compile units. Field
 * paths in issues start at the object root (`spec.ingress[0]...`, or
 * `specs[1]...` for a Cilium rule list), so the source can report file,
 * document, object and field. Every problem is reported, not just the first.
 */
export function parsePolicy(policy: PolicyObject): Result<PolicyUnit[]> {
  const raw: RawIssue[] = [];
  const ref = policyRef(policy);
  const ctx = { cluster: policy.cluster, namespace: policy.namespace };
  const audit = readAudit(policy, raw);
  const specs: { spec: ParsedSpec | undefined; path: string }[] = [];
  if (policy.kind === 'NetworkPolicy') {
    specs.push({
      spec: parseNetworkPolicySpec(new Checker(raw, policy.spec, 'spec'), ctx),
      path: 'spec',
    });
  } else {
    const clusterwide = policy.kind === 'CiliumClusterwideNetworkPolicy';
    if (Array.isArray(policy.spec)) {
      const list = new Checker(raw, policy.spec, 'specs').list() ?? [];
      for (const item of list)
        specs.push({ spec: parseCiliumSpec(item, ctx, clusterwide), path: item.path });
    } else {
      specs.push({
        spec: parseCiliumSpec(new Checker(raw, policy.spec, 'spec'), ctx, clusterwide),
        path: 'spec',
      });
    }
  }
  const object = describePolicy(ref);
  const toIssue = (r: RawIssue): ValidationIssue => ({
    object,
    field: r.field,
    message: r.message,
    severity: r.severity,
  });
  const errors = raw.filter((r) => r.severity === 'error').map(toIssue);
  const warnings = raw.filter((r) => r.severity === 'warning').map(toIssue);
  if (errors.length > 0) return { ok: false, errors };
  const units = specs.map(({ spec, path }, i): PolicyUnit => {
    const s = spec!;
    return {
      id: `${policyId(ref)}#${i}`,
      ref,
      subject: s.subject,
      defaultDeny: s.defaultDeny,
      audit,
      rules: s.rules,
      warnings: warnings
        .filter((w) => w.field?.startsWith(path) ?? false)
        .map((w) => `${w.field}: ${w.message}`),
    };
  });
  return { ok: true, value: units, warnings };
}

function readAudit(policy: PolicyObject, raw: RawIssue[]): boolean {
  const value = policy.annotations?.[AUDIT_ANNOTATION];
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  raw.push({
    field: `metadata.annotations[${JSON.stringify(AUDIT_ANNOTATION)}]`,
    message: `must be "true" or "false", got ${JSON.stringify(value)}`,
    severity: 'error',
  });
  return false;
}

/** Every issue of a policy (errors and warnings), for the cluster source. */
export function validatePolicy(policy: PolicyObject): ValidationIssue[] {
  const r = parsePolicy(policy);
  return r.ok ? r.warnings : r.errors;
}
