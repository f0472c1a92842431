import { RESERVED } from '../identity/index.js';
import type { Checker } from './checker.js';
import type { Peer, PortItem, Rule } from './model.js';
import { isDeny, isEgress } from './model.js';
import { parseBlock, parseCidr, parsePort, parseSelector } from './parse-common.js';
import type { ParsedSpec, SpecContext } from './parse-k8s.js';
import { localByDefault, subjectSelector } from './parse-k8s.js';
import {
  CLUSTER_KEY,
  NAMESPACE_KEY,
  constrains,
  makeSelector,
  withRequirements,
} from './selector.js';
import type { Section } from './types.js';

const SECTIONS: readonly Section[] = ['ingress', 'egress', 'ingressDeny', 'egressDeny'];
const UNSUPPORTED_INGRESS = ['fromRequires', 'fromGroups', 'fromNodes', 'icmps', 'authentication'];
const UNSUPPORTED_EGRESS = [
  'toRequires',
  'toFQDNs',
  'toServices',
  'toGroups',
  'toNodes',
  'icmps',
  'authentication',
];
const UNSUPPORTED_PORT_RULE = ['terminatingTLS', 'originatingTLS', 'serverNames', 'listener'];
const UNSUPPORTED_L7 = ['dns', 'kafka', 'l7proto', 'l7'];
const HTTP_FIELDS = ['method', 'path', 'host', 'headers', 'headerMatches'];

/** The local cluster's endpoints plus the reserved identities Cilium counts as "cluster". */
const CLUSTER_ENTITY_RESERVED = [
  'host',
  'remote-node',
  'init',
  'ingress',
  'health',
  'unmanaged',
  'kube-apiserver',
] as const;
export const ENTITIES = [
  'all',
  'world',
  'world-ipv4',
  'world-ipv6',
  'cluster',
  ...CLUSTER_ENTITY_RESERVED,
  'none',
] as const;

function entityPeers(entity: string, ctx: SpecContext): Peer[] {
  switch (entity) {
    case 'all':
      return [{ kind: 'any' }];
    case 'none':
      return [];
    case 'world':
    case 'world-ipv4':
    case 'world-ipv6':
      return [{ kind: 'reserved', id: RESERVED.world }];
    case 'cluster':
      return [
        {
          kind: 'selector',
          selector: makeSelector([{ key: CLUSTER_KEY, operator: 'In', values: [ctx.cluster] }]),
        },
        ...CLUSTER_ENTITY_RESERVED.map((e): Peer => ({ kind: 'reserved', id: RESERVED[e] })),
      ];
    default:
      return [{ kind: 'reserved', id: RESERVED[entity as keyof typeof RESERVED] }];
  }
}

function parsePeers(
  rule: Checker,
  section: Section,
  ctx: SpecContext,
): { peers: Peer[]; set: boolean } | undefined {
  const dir = isEgress(section) ? 'to' : 'from';
  let ok = true;
  let set = false;
  const peers: Peer[] = [];
  for (const at of rule.at(`${dir}Endpoints`).list() ?? []) {
    set = true;
    const sel = parseSelector(at);
    if (sel === undefined) {
      ok = false;
      continue;
    }
    // Namespaced policies: peers in the policy's namespace unless the selector names one.
    const scoped =
      ctx.namespace !== '' && !constrains(sel, NAMESPACE_KEY)
        ? withRequirements(sel, [{ key: NAMESPACE_KEY, operator: 'In', values: [ctx.namespace] }])
        : sel;
    peers.push({ kind: 'selector', selector: localByDefault(scoped, ctx.cluster) });
  }
  for (const at of rule.at(`${dir}Entities`).list() ?? []) {
    set = true;
    const e = at.string();
    if (e === undefined || !(ENTITIES as readonly string[]).includes(e)) {
      ok = false;
      at.error(`unknown entity ${JSON.stringify(at.value)}; one of ${ENTITIES.join(', ')}`);
    } else peers.push(...entityPeers(e, ctx));
  }
  for (const at of rule.at(`${dir}CIDR`).list() ?? []) {
    set = true;
    const cidr = parseCidr(at, at.string());
    if (cidr === undefined) ok = false;
    else peers.push({ kind: 'cidr', block: { cidr, except: [] }, pods: false });
  }
  for (const at of rule.at(`${dir}CIDRSet`).list() ?? []) {
    set = true;
    const block = parseBlock(at, ['cidrGroupRef', 'cidrGroupSelector']);
    if (block === undefined) ok = false;
    else peers.push({ kind: 'cidr', block, pods: false });
  }
  return ok ? { peers, set } : undefined;
}

function parseToPorts(
  rule: Checker,
  section: Section,
): { ports: PortItem[] | null; l7: boolean } | undefined {
  const list = rule.at('toPorts').list();
  if (list === undefined || list.length === 0) return { ports: null, l7: false };
  let ok = true;
  let l7 = false;
  const ports: PortItem[] = [];
  for (const pr of list) {
    pr.keys(['ports', 'rules'], UNSUPPORTED_PORT_RULE);
    const portList = pr.at('ports').list();
    if (portList === undefined || portList.length === 0) {
      ports.push({ kind: 'number', protocol: 0, low: 0, high: 0 });
    }
    for (const p of portList ?? []) {
      p.keys(['port', 'endPort', 'protocol']);
      const items = parsePort(p, { defaultProtocol: 'ANY', allowAny: true });
      if (items === undefined) ok = false;
      else ports.push(...items);
    }
    const rulesAt = pr.at('rules');
    if (!rulesAt.present) continue;
    if (isDeny(section)) {
      ok = false;
      rulesAt.error('L7 rules are not allowed in deny rules');
      continue;
    }
    rulesAt.keys(['http'], UNSUPPORTED_L7);
    for (const h of rulesAt.at('http').list() ?? []) h.keys(HTTP_FIELDS);
    if (rulesAt.at('http').present) {
      l7 = true;
      rulesAt.at('http').warn('L7 rules not enforced: the rule allows its peers and ports at L4');
    }
  }
  return ok ? { ports, l7 } : undefined;
}

function parseRule(
  at: Checker,
  section: Section,
  index: number,
  ctx: SpecContext,
): Rule | undefined {
  if (at.map() === undefined) return at.present ? undefined : at.error('must be a map');
  const dir = isEgress(section) ? 'to' : 'from';
  at.keys(
    [`${dir}Endpoints`, `${dir}Entities`, `${dir}CIDR`, `${dir}CIDRSet`, 'toPorts'],
    isEgress(section) ? UNSUPPORTED_EGRESS : UNSUPPORTED_INGRESS,
  );
  const peers = parsePeers(at, section, ctx);
  const ports = parseToPorts(at, section);
  if (peers === undefined || ports === undefined) return undefined;
  // No peer field: a rule with ports applies to every peer; an empty rule (`{}`) allows nothing.
  const resolved = peers.set ? peers.peers : ports.ports !== null ? [{ kind: 'any' } as const] : [];
  const named = ports.ports?.some((p) => p.kind === 'named') ?? false;
  return {
    section,
    index,
    peers: resolved,
    ports: ports.ports,
    l7: ports.l7,
    endpointDependent: isEgress(section) && named,
  };
}

/** One Cilium rule (a CiliumNetworkPolicy or clusterwide `spec`, or an item of `specs`). */
export function parseCiliumSpec(
  spec: Checker,
  ctx: SpecContext,
  clusterwide: boolean,
): ParsedSpec | undefined {
  if (spec.map() === undefined) return spec.present ? undefined : spec.error('is required');
  spec.keys(
    [
      'endpointSelector',
      'ingress',
      'egress',
      'ingressDeny',
      'egressDeny',
      'enableDefaultDeny',
      'description',
      'labels',
      ...(clusterwide ? ['nodeSelector'] : []),
    ],
    ['log'],
  );
  let ok = true;
  const epAt = spec.at('endpointSelector');
  const nodeAt = spec.at('nodeSelector');
  let subject = null;
  if (epAt.present === nodeAt.present) {
    ok = false;
    spec.error(
      clusterwide
        ? 'must set exactly one of endpointSelector and nodeSelector'
        : 'endpointSelector is required',
    );
  } else if (epAt.present) {
    const sel = parseSelector(epAt);
    if (sel === undefined) ok = false;
    else subject = subjectSelector(sel, ctx);
  } else {
    if (parseSelector(nodeAt) === undefined) ok = false;
    nodeAt.warn(
      'selects host endpoints, which meshplane does not manage: the rule selects no endpoint',
    );
  }
  const dd = spec.at('enableDefaultDeny');
  dd.keys(['ingress', 'egress']);
  const ddIngress = dd.at('ingress').boolean();
  const ddEgress = dd.at('egress').boolean();
  const rules: Rule[] = [];
  const has = { ingress: false, egress: false };
  for (const section of SECTIONS) {
    const list = spec.at(section).list() ?? [];
    if (list.length > 0) has[isEgress(section) ? 'egress' : 'ingress'] = true;
    list.forEach((r, i) => {
      const rule = parseRule(r, section, i, ctx);
      if (rule === undefined) ok = false;
      else rules.push(rule);
    });
  }
  if (!ok) return undefined;
  return {
    subject,
    // Any rule for a direction — deny-only included — selects it, unless enableDefaultDeny says no.
    defaultDeny: {
      ingress: has.ingress && ddIngress !== false,
      egress: has.egress && ddEgress !== false,
    },
    rules,
  };
}
