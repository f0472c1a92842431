import { protocolNumber } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import type { CidrBlock } from './cidr.js';
import { blockContainsIp } from './cidr.js';
import type { CountSlot, EntryKey } from './entry-table.js';
import { ALLOW, AUDIT, DENY } from './entry-table.js';
import type { Peer, PolicyUnit, PortItem, Rule } from './model.js';
import { isDeny, isEgress } from './model.js';
import type { EndpointInfo } from './types.js';

/** One policy map key a rule adds for one endpoint and one peer identity. */
export interface Contribution extends EntryKey {
  verdict: Verdict;
}

/** Facts about the mesh a rule's entries depend on; provided by the engine. */
export interface RuleContext {
  /** identities a selector peer matches */
  selectorMatches(peer: Peer & { kind: 'selector' }): ReadonlySet<number>;
  /** CIDR identities (and world) a CIDR peer matches; errors name missing allocations */
  cidrMatches(block: CidrBlock): { ids: readonly number[]; errors: readonly string[] };
  /** identities that have endpoints, with those endpoints */
  endpointsByIdentity(): ReadonlyMap<number, readonly EndpointInfo[]>;
}

export interface PeerSet {
  ids: Set<number>;
  errors: string[];
}

/** The peer identities of a rule (0 = any), and why some pods could not be placed. */
export function rulePeers(rule: Rule, ctx: RuleContext): PeerSet {
  const out: PeerSet = { ids: new Set(), errors: [] };
  for (const peer of rule.peers) {
    switch (peer.kind) {
      case 'any':
        out.ids.add(0);
        break;
      case 'reserved':
        out.ids.add(peer.id);
        break;
      case 'selector':
        for (const id of ctx.selectorMatches(peer)) out.ids.add(id);
        break;
      case 'cidr': {
        const m = ctx.cidrMatches(peer.block);
        for (const id of m.ids) out.ids.add(id);
        out.errors.push(...m.errors);
        if (peer.pods) podsInBlock(peer.block, ctx, out);
        break;
      }
    }
  }
  return out;
}

/**
 * Kubernetes ipBlock matches pod IPs too. Entries are per identity, so an
 * identity is a peer only when all of its pods' addresses are in the block;
 * one straddling the block cannot be expressed exactly and is reported.
 */
function podsInBlock(block: CidrBlock, ctx: RuleContext, out: PeerSet): void {
  for (const [id, eps] of ctx.endpointsByIdentity()) {
    const inside: string[] = [];
    const outside: string[] = [];
    for (const ep of eps) {
      for (const ip of ep.ips)
        (blockContainsIp(block, ip) ? inside : outside).push(`${ep.namespace}/${ep.name} ${ip}`);
    }
    // Sorted: pods are listed in the order they arrived, which history decides.
    inside.sort();
    outside.sort();
    if (inside.length > 0 && outside.length === 0) out.ids.add(id);
    else if (inside.length > 0) {
      out.errors.push(
        `unenforceable: pods of identity ${id} fall on both sides of ipBlock ${block.cidr.text}${block.except.length > 0 ? ` except ${block.except.map((e) => e.text).join(',')}` : ''} (inside: ${inside.join(', ')}; outside: ${outside.join(', ')})`,
      );
    }
  }
}

function resolveNamed(
  item: PortItem & { kind: 'named' },
  ep: EndpointInfo,
): { protocol: number; port: number } | undefined {
  const np = ep.namedPorts.find((p) => p.name === item.name);
  if (np === undefined) return undefined;
  const protocol = protocolNumber(np.protocol) ?? 6;
  if (item.protocol !== 0 && item.protocol !== protocol) return undefined;
  return { protocol, port: np.port };
}

const ANY_PORT: readonly PortItem[] = [{ kind: 'number', protocol: 0, low: 0, high: 0 }];

function ruleVerdict(unit: PolicyUnit, rule: Rule): Verdict {
  if (!isDeny(rule.section)) return Verdict.VERDICT_ALLOW;
  return unit.audit ? Verdict.VERDICT_AUDIT : Verdict.VERDICT_DENY;
}

export function countSlot(v: Verdict): CountSlot {
  return v === Verdict.VERDICT_DENY ? DENY : v === Verdict.VERDICT_AUDIT ? AUDIT : ALLOW;
}

/**
 * What a rule adds to endpoint `ep` for any one peer, when that does not
 * depend on the peer's pods: the same (protocol, port range) keys with the
 * peer's identity. The compile's hot path: no per-peer allocation.
 */
export interface RuleTemplate {
  readonly direction: Direction;
  readonly verdict: Verdict;
  readonly slot: CountSlot;
  /** protocol, portLow, portHigh per key */
  readonly ports: number[];
}

/**
 * Templates of rules without named ports, which are the same for every
 * endpoint: memoized per (immutable) rule so the compile and identity churn
 * do not rebuild them per endpoint.
 */
const shared = new WeakMap<Rule, RuleTemplate>();

/** The template of a rule for `ep`, or undefined when its keys depend on the peer's pods (egress named ports). */
export function ruleTemplate(
  ep: EndpointInfo,
  unit: PolicyUnit,
  rule: Rule,
): RuleTemplate | undefined {
  const cached = shared.get(rule);
  if (cached !== undefined) return cached;
  const t = buildTemplate(ep, unit, rule);
  if (t !== undefined && !(rule.ports ?? []).some((p) => p.kind === 'named')) shared.set(rule, t);
  return t;
}

function buildTemplate(ep: EndpointInfo, unit: PolicyUnit, rule: Rule): RuleTemplate | undefined {
  const egress = isEgress(rule.section);
  const verdict = ruleVerdict(unit, rule);
  const t: RuleTemplate = {
    direction: egress ? Direction.DIRECTION_EGRESS : Direction.DIRECTION_INGRESS,
    verdict,
    slot: countSlot(verdict),
    ports: [],
  };
  for (const item of rule.ports ?? ANY_PORT) {
    if (item.kind === 'number') {
      t.ports.push(item.protocol, item.low, item.high);
      continue;
    }
    if (egress) return undefined;
    // Ingress: the named port is the endpoint's own.
    const r = resolveNamed(item, ep);
    if (r !== undefined) t.ports.push(r.protocol, r.port, r.port);
  }
  return t;
}

/**
 * The entries one rule adds to endpoint `ep` for peer identity `peer`.
 * Ingress named ports resolve against `ep` itself; egress named ports against
 * the peer's pods, which must all agree. Pure given `ctx`.
 */
export function peerContributions(
  ep: EndpointInfo,
  unit: PolicyUnit,
  rule: Rule,
  peer: number,
  ctx: RuleContext,
  errors: string[],
): Contribution[] {
  const egress = isEgress(rule.section);
  const direction = egress ? Direction.DIRECTION_EGRESS : Direction.DIRECTION_INGRESS;
  const verdict = ruleVerdict(unit, rule);
  const out: Contribution[] = [];
  for (const item of rule.ports ?? ANY_PORT) {
    if (item.kind === 'number') {
      out.push({
        direction,
        identity: peer,
        protocol: item.protocol,
        portLow: item.low,
        portHigh: item.high,
        verdict,
      });
      continue;
    }
    if (!egress) {
      const r = resolveNamed(item, ep);
      if (r !== undefined)
        out.push({
          direction,
          identity: peer,
          protocol: r.protocol,
          portLow: r.port,
          portHigh: r.port,
          verdict,
        });
      continue;
    }
    // Egress: the destination's pods name the port. "Any peer" means every identity with pods.
    const byId = ctx.endpointsByIdentity();
    const targets = peer === 0 ? [...byId.keys()] : [peer];
    for (const id of targets) {
      const resolutions = new Map<string, { protocol: number; port: number } | undefined>();
      for (const e of byId.get(id) ?? []) {
        const r = resolveNamed(item, e);
        resolutions.set(r === undefined ? 'none' : `${r.protocol}/${r.port}`, r);
      }
      if (resolutions.size > 1) {
        errors.push(
          `unenforceable: named port "${item.name}" resolves differently across the pods of identity ${id} (${[...resolutions.keys()].sort().join(', ')})`,
        );
        continue;
      }
      const [only] = resolutions.values();
      if (only === undefined) continue;
      out.push({
        direction,
        identity: id,
        protocol: only.protocol,
        portLow: only.port,
        portHigh: only.port,
        verdict,
      });
    }
  }
  return out;
}
