import type { Checker } from './checker.js';
import type { Peer, PortItem, Rule } from './model.js';
import { parseBlock, parsePort, parseSelector } from './parse-common.js';
import type { Selector } from './selector.js';
import {
  CLUSTER_KEY,
  NAMESPACE_KEY,
  constrains,
  makeSelector,
  withRequirements,
} from './selector.js';
import type { Section } from './types.js';

export interface ParsedSpec {
  subject: Selector | null;
  defaultDeny: { ingress: boolean; egress: boolean };
  rules: Rule[];
}

export interface SpecContext {
  cluster: string;
  namespace: string;
}

/** Every peer selector matches the local cluster only unless it names the cluster label. */
export function localByDefault(sel: Selector, cluster: string): Selector {
  return constrains(sel, CLUSTER_KEY)
    ? sel
    : withRequirements(sel, [{ key: CLUSTER_KEY, operator: 'In', values: [cluster] }]);
}

function inNamespace(sel: Selector, namespace: string): Selector {
  return withRequirements(sel, [{ key: NAMESPACE_KEY, operator: 'In', values: [namespace] }]);
}

/** The endpoints of the policy's own cluster (and namespace, for namespaced kinds). */
export function subjectSelector(sel: Selector, ctx: SpecContext): Selector {
  const local = withRequirements(sel, [
    { key: CLUSTER_KEY, operator: 'In', values: [ctx.cluster] },
  ]);
  return ctx.namespace === '' ? local : inNamespace(local, ctx.namespace);
}

function parsePeer(at: Checker, ctx: SpecContext): Peer | undefined {
  if (at.map() === undefined) return at.error('must be a map');
  at.keys(['podSelector', 'namespaceSelector', 'ipBlock']);
  const podAt = at.at('podSelector');
  const nsAt = at.at('namespaceSelector');
  const blockAt = at.at('ipBlock');
  if (blockAt.present) {
    if (podAt.present || nsAt.present)
      return blockAt.error('may not be combined with podSelector or namespaceSelector');
    const block = parseBlock(blockAt);
    return block === undefined ? undefined : { kind: 'cidr', block, pods: true };
  }
  if (!podAt.present && !nsAt.present)
    return at.error('must set podSelector, namespaceSelector or ipBlock');
  const pods = podAt.present ? parseSelector(podAt) : makeSelector([]);
  const namespaces = nsAt.present ? parseSelector(nsAt, 'namespace') : undefined;
  if (pods === undefined || (nsAt.present && namespaces === undefined)) return undefined;
  // podSelector alone: the policy's namespace; with a namespaceSelector: the namespaces it selects.
  const scoped =
    namespaces === undefined
      ? inNamespace(pods, ctx.namespace)
      : withRequirements(pods, namespaces.requirements);
  return { kind: 'selector', selector: localByDefault(scoped, ctx.cluster) };
}

function parseRule(
  at: Checker,
  section: Section,
  index: number,
  ctx: SpecContext,
): Rule | undefined {
  const peersKey = section === 'ingress' ? 'from' : 'to';
  if (at.map() === undefined) return at.present ? undefined : at.error('must be a map');
  at.keys([peersKey, 'ports']);
  let ok = true;
  const peerList = at.at(peersKey).list();
  const peers: Peer[] = [];
  for (const p of peerList ?? []) {
    const peer = parsePeer(p, ctx);
    if (peer === undefined) ok = false;
    else peers.push(peer);
  }
  const portList = at.at('ports').list();
  let ports: PortItem[] | null = null;
  if (portList !== undefined && portList.length > 0) {
    ports = [];
    for (const p of portList) {
      p.keys(['protocol', 'port', 'endPort']);
      const items = parsePort(p, { defaultProtocol: 'TCP', allowAny: false });
      if (items === undefined) ok = false;
      else ports.push(...items);
    }
  }
  if (!ok) return undefined;
  const named = ports?.some((p) => p.kind === 'named') ?? false;
  return {
    section,
    index,
    // Absent or empty from/to: every peer.
    peers: peers.length === 0 ? [{ kind: 'any' }] : peers,
    ports,
    l7: false,
    endpointDependent: peers.some((p) => p.kind === 'cidr') || (section === 'egress' && named),
  };
}

/** networking.k8s.io/v1 NetworkPolicy `spec`, with Kubernetes' defaulting of policyTypes. */
export function parseNetworkPolicySpec(spec: Checker, ctx: SpecContext): ParsedSpec | undefined {
  if (spec.map() === undefined) return spec.present ? undefined : spec.error('is required');
  spec.keys(['podSelector', 'ingress', 'egress', 'policyTypes']);
  const podAt = spec.at('podSelector');
  let ok = true;
  const pods = podAt.present ? parseSelector(podAt) : makeSelector([]);
  if (pods === undefined) ok = false;
  const egressList = spec.at('egress').list();
  const typesAt = spec.at('policyTypes');
  let types = (typesAt.list() ?? []).map((t) => {
    const v = t.string();
    if (v !== 'Ingress' && v !== 'Egress') {
      ok = false;
      t.error(`must be Ingress or Egress, got ${JSON.stringify(t.value)}`);
    }
    return v;
  });
  if (types.length === 0) {
    // As the API server defaults it: Ingress, plus Egress when there are egress rules.
    types = ['Ingress', ...(egressList !== undefined && egressList.length > 0 ? ['Egress'] : [])];
  }
  const rules: Rule[] = [];
  for (const section of ['ingress', 'egress'] as const) {
    const list = spec.at(section).list() ?? [];
    const enabled = types.includes(section === 'ingress' ? 'Ingress' : 'Egress');
    if (!enabled && list.length > 0)
      spec
        .at(section)
        .warn(
          `ignored: policyTypes does not include ${section === 'ingress' ? 'Ingress' : 'Egress'}`,
        );
    list.forEach((r, i) => {
      const rule = parseRule(r, section, i, ctx);
      if (rule === undefined) ok = false;
      else if (enabled) rules.push(rule);
    });
  }
  if (!ok || pods === undefined) return undefined;
  return {
    subject: subjectSelector(pods, ctx),
    defaultDeny: { ingress: types.includes('Ingress'), egress: types.includes('Egress') },
    rules,
  };
}
