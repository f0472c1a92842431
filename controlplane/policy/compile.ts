import type { PolicyObject, ValidationIssue } from '../../common/index.js';
import { PolicyEngine } from './engine.js';
import type { PolicyUnit } from './model.js';
import { parsePolicy } from './parse-policy.js';
import type { CompileOptions, EndpointInfo, IdentityInfo } from './types.js';

export interface ParsedPolicies {
  units: PolicyUnit[];
  errors: ValidationIssue[];
  warnings: ValidationIssue[];
}

/** Validates policies as a whole: every issue of every policy; units only of the valid ones. */
export function parsePolicies(policies: readonly PolicyObject[]): ParsedPolicies {
  const out: ParsedPolicies = { units: [], errors: [], warnings: [] };
  for (const p of policies) {
    const r = parsePolicy(p);
    if (r.ok) {
      out.units.push(...r.value);
      out.warnings.push(...r.warnings);
    } else out.errors.push(...r.errors);
  }
  return out;
}

/**
 * A full compile: the engine for these policies, identities and endpoints.
 * Invalid policies are left out and reported in `errors` (a change set with
 * errors should not be applied at all; the caller decides).
 */
export function compilePolicies(
  policies: readonly PolicyObject[],
  input: { identities: readonly IdentityInfo[]; endpoints: readonly EndpointInfo[] },
  opts: CompileOptions = {},
): { engine: PolicyEngine } & ParsedPolicies {
  const parsed = parsePolicies(policies);
  return { ...parsed, engine: new PolicyEngine(parsed.units, input, opts) };
}
