import { policyKeyString, protocolNumber } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import type { CidrBlock } from './cidr.js';
import { blockContainsIp } from './cidr.js';
import type { Peer, PolicyUnit, PortItem, Rule } from './model.js';
import { isDeny, isEgress } from './model.js';
import type { EndpointInfo } from './types.js';

/** One policy map key a rule adds for one endpoint and one peer identity. */
export interface Contribution {
  key: string;
  verdict: Verdict;
  peer: number;
  unit: PolicyUnit;
  rule: Rule;
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
    if (inside.length > 0 && outside.length === 0) out.ids.add(id);
    else if (inside.length > 0) {
      out.errors.push(
        `unenforceable: pods of identity ${id} fall on both sides of ipBlock ${block.cidr.text}${block.except.length > 0 ? ` except ${block.except.map((e) => e.text).join(',')}` : ''} (inside: ${inside.join(', ')}; outside: ${outside.join(', ')})`,
      );
    }
  }
}

function resolveNamed(item: PortItem & { kind: 'named' }, ep: EndpointInfo): string | undefined {
  const np = ep.namedPorts.find((p) => p.name === item.name);
  if (np === undefined) return undefined;
  const proto = protocolNumber(np.protocol) ?? 6;
  if (item.protocol !== 0 && item.protocol !== proto) return undefined;
  return `${proto}/${np.port}`;
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
  const verdict = isDeny(rule.section)
    ? unit.audit
      ? Verdict.VERDICT_AUDIT
      : Verdict.VERDICT_DENY
    : Verdict.VERDICT_ALLOW;
  const out: Contribution[] = [];
  const push = (identity: number, protocol: number, low: number, high: number): void => {
    const key = policyKeyString({ direction, identity, protocol, portLow: low, portHigh: high });
    out.push({ key, verdict, peer, unit, rule });
  };
  for (const item of rule.ports ?? [{ kind: 'number', protocol: 0, low: 0, high: 0 } as const]) {
    if (item.kind === 'number') {
      push(peer, item.protocol, item.low, item.high);
      continue;
    }
    if (!egress) {
      const r = resolveNamed(item, ep);
      if (r !== undefined) {
        const [proto, port] = r.split('/').map(Number) as [number, number];
        push(peer, proto, port, port);
      }
      continue;
    }
    // Egress: the destination's pods name the port. "Any peer" means every identity with pods.
    const byId = ctx.endpointsByIdentity();
    const targets = peer === 0 ? [...byId.keys()] : [peer];
    for (const id of targets) {
      const resolutions = new Set((byId.get(id) ?? []).map((e) => resolveNamed(item, e) ?? 'none'));
      if (resolutions.size > 1) {
        errors.push(
          `unenforceable: named port "${item.name}" resolves differently across the pods of identity ${id} (${[...resolutions].sort().join(', ')})`,
        );
        continue;
      }
      const [only] = resolutions;
      if (only === undefined || only === 'none') continue;
      const [proto, port] = only.split('/').map(Number) as [number, number];
      push(id, proto, port, port);
    }
  }
  return out;
}
