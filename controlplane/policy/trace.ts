import { comparePolicyKeys, lookupPolicy, protocolName, verdictName } from '../../common/index.js';
import { Direction, Verdict, type PolicyEntry } from '../../proto/index.js';
import { blockContainsIp } from './cidr.js';
import type { PolicyEngine } from './engine.js';
import type { EndpointState } from './endpoint-state.js';
import type { PolicyUnit, Rule } from './model.js';
import { describePolicy } from './parse-policy.js';
import { peerContributions, rulePeers } from './rule-entries.js';
import type { PolicyRef, Section } from './types.js';

export interface TraceDecision {
  kind: 'policy' | 'default-deny' | 'no-policy';
  policy?: PolicyRef;
  section: Section;
  ruleIndex?: number;
}

export interface TraceResult {
  allowed: boolean;
  decision: TraceDecision;
  reason: string;
}

export interface TraceQuery {
  /** cluster/namespace/name of the source pod */
  from: string;
  /** cluster/namespace/name of the destination pod, or an address */
  to: string;
  port: number;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP) */
  protocol: number;
}

interface Side {
  allowed: boolean;
  audit: boolean;
  decision: TraceDecision;
  reason: string;
}

/** The identity the datapath gives an address: a pod's, else the longest CIDR prefix's, else world. */
function identityOfAddress(
  engine: PolicyEngine,
  ip: string,
  cidrIdentity: (p: string) => number | undefined,
): number {
  let best: { len: number; id: number } | undefined;
  for (const p of engine.prefixes) {
    const id = cidrIdentity(p.text);
    if (
      id !== undefined &&
      blockContainsIp({ cidr: p, except: [] }, ip) &&
      (best === undefined || p.len > best.len)
    )
      best = { len: p.len, id };
  }
  return best?.id ?? 2;
}

/**
 * The first rule (in unit and rule order) that contributes `entry` to the
 * endpoint with its verdict class. Recomputed from the rules rather than
 * stored per entry: trace is rare, the compile holds millions of entries.
 */
function contributor(
  engine: PolicyEngine,
  state: EndpointState,
  entry: PolicyEntry,
): { unit: PolicyUnit; rule: Rule } | undefined {
  for (const unit of state.units) {
    for (const rule of unit.rules) {
      if (!state.applies(unit, rule.section)) continue;
      const peers = rulePeers(rule, engine).ids;
      // An entry names its peer, or comes from "any peer" (egress named ports expand 0 to identities).
      for (const peer of new Set([entry.identity, 0])) {
        if (!peers.has(peer)) continue;
        for (const c of peerContributions(state.info, unit, rule, peer, engine, [])) {
          const cls =
            c.verdict === Verdict.VERDICT_DENY && state.info.audit === true
              ? Verdict.VERDICT_AUDIT
              : c.verdict;
          if (cls === entry.verdict && comparePolicyKeys(c, entry) === 0) return { unit, rule };
        }
      }
    }
  }
  return undefined;
}

function decide(
  engine: PolicyEngine,
  state: EndpointState,
  section: 'ingress' | 'egress',
  peer: number,
  q: TraceQuery,
): Side {
  const direction =
    section === 'ingress' ? Direction.DIRECTION_INGRESS : Direction.DIRECTION_EGRESS;
  const mode = state[section];
  const hit = lookupPolicy(
    state.entries(),
    { direction, identity: peer, protocol: q.protocol, port: q.port },
    mode.enforced,
  );
  const selecting = state.units.filter((u) => u.defaultDeny[section]);
  const what = `${section} of ${state.info.namespace}/${state.info.name}`;
  if (hit.entry === undefined) {
    if (hit.verdict === 'deny') {
      return {
        allowed: false,
        audit: false,
        decision: { kind: 'default-deny', policy: selecting[0]!.ref, section },
        reason: `default deny: ${what} is selected by ${selecting.map((u) => describePolicy(u.ref)).join(', ')} and no rule allows identity ${peer} on ${protocolName(q.protocol)}/${q.port}`,
      };
    }
    return {
      allowed: true,
      audit: false,
      decision: { kind: 'no-policy', section },
      reason: `no policy selects ${what}`,
    };
  }
  const wanted = hit.entry.verdict;
  const found = contributor(engine, state, hit.entry);
  if (found !== undefined) {
    const { unit: u, rule } = found;
    const where = `${describePolicy(u.ref)} ${rule.section}[${rule.index}]`;
    const decision: TraceDecision = {
      kind: 'policy',
      policy: u.ref,
      section: rule.section,
      ruleIndex: rule.index,
    };
    if (wanted === Verdict.VERDICT_DENY)
      return { allowed: false, audit: false, decision, reason: `denied by ${where}` };
    if (wanted === Verdict.VERDICT_AUDIT) {
      return {
        allowed: true,
        audit: true,
        decision,
        reason: `audit: ${where} would deny it (not enforced)`,
      };
    }
    const l7 = rule.l7 ? '; L7 rules not enforced' : '';
    return { allowed: true, audit: false, decision, reason: `allowed by ${where}${l7}` };
  }
  // The any-any audit entry of a direction whose default deny is audited.
  return {
    allowed: true,
    audit: true,
    decision: { kind: 'default-deny', policy: selecting[0]!.ref, section },
    reason: `audit: default deny of ${what} would drop it (not enforced, ${verdictName(wanted)})`,
  };
}

/**
 * Why a connection is allowed or denied: the source's egress, then the
 * destination's ingress (replies of allowed connections pass via conntrack).
 * Pure; reads the engine's compiled state. Throws NOT_FOUND-style errors as
 * a result with `allowed: false` only for unknown endpoints' callers to map.
 */
export function trace(
  engine: PolicyEngine,
  q: TraceQuery,
  cidrIdentity: (p: string) => number | undefined = () => undefined,
): TraceResult | { error: string } {
  const src = engine.state(q.from);
  if (src === undefined)
    return { error: `unknown endpoint ${q.from} (or its identity is not known)` };
  const byIp = engine.endpointByIp(q.to);
  const to = byIp === undefined ? q.to : `${byIp.cluster}/${byIp.namespace}/${byIp.name}`;
  const dst = engine.state(to);
  const peer =
    dst?.info.identity ??
    (engine.endpoint(to) === undefined ? identityOfAddress(engine, q.to, cidrIdentity) : undefined);
  if (peer === undefined) return { error: `unknown endpoint ${to}` };
  const egress = decide(engine, src, 'egress', peer, q);
  if (!egress.allowed) return { allowed: false, decision: egress.decision, reason: egress.reason };
  if (dst === undefined) return { allowed: true, decision: egress.decision, reason: egress.reason };
  const ingress = decide(engine, dst, 'ingress', src.info.identity, q);
  if (!ingress.allowed)
    return { allowed: false, decision: ingress.decision, reason: ingress.reason };
  const audited = [egress, ingress].find((s) => s.audit);
  const chosen =
    audited ??
    (ingress.decision.kind === 'policy' || egress.decision.kind !== 'policy' ? ingress : egress);
  const other = chosen === ingress ? egress : ingress;
  const l7 =
    other.reason.includes('L7 rules not enforced') && !chosen.reason.includes('L7')
      ? '; L7 rules not enforced'
      : '';
  return { allowed: true, decision: chosen.decision, reason: `${chosen.reason}${l7}` };
}
