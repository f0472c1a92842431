import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PolicyObject } from '../../common/index.js';
import { policyKeyString } from '../../common/index.js';
import type {
  EndpointDelta,
  EndpointInfo,
  EndpointPolicyResult,
  IdentityInfo,
} from '../../controlplane/policy/index.js';
import { PolicyEngine, parsePolicies, parsePolicy } from '../../controlplane/policy/index.js';
import { ccnp, cnp, np } from './fixtures.js';

// Random policy sets and random policy/identity/endpoint churn: applying the
// engine's per-endpoint deltas gives exactly what a full compile gives, and
// the engine's own results and policy listing equal the full compile's.
const apps = ['a', 'b', 'c'];
const namespaces = ['n1', 'n2'];
const clusters = ['eu', 'us'];

const identityArb = fc.record({
  id: fc.integer({ min: 256, max: 263 }),
  app: fc.constantFrom(...apps),
  ns: fc.constantFrom(...namespaces),
  cluster: fc.constantFrom(...clusters),
});
const selectorArb = fc.oneof(
  fc.record({ matchLabels: fc.record({ app: fc.constantFrom(...apps) }) }),
  fc.constant({}),
  fc.record({
    matchLabels: fc.record({
      app: fc.constantFrom(...apps),
      'io.cilium.k8s.policy.cluster': fc.constantFrom(...clusters),
    }),
  }),
  fc.record({ matchExpressions: fc.constant([{ key: 'app', operator: 'NotIn', values: ['a'] }]) }),
);
const portsArb = fc.oneof(
  fc.constant(undefined),
  fc.constant([{ ports: [{ port: '80', protocol: 'TCP' }] }]),
  fc.constant([{ ports: [{ port: 'http' }] }]),
  fc.constant([{ ports: [{ port: '1000', endPort: 2000, protocol: 'UDP' }] }]),
);
// CIDR peers: identities exist for some prefixes only (the others are errors in both compiles).
const CIDR_IDS = new Map(
  ['10.0.0.0/8', '10.1.0.0/16', '10.1.0.0/24'].map((p, i) => [p, (1 << 24) | (i + 1)]),
);
const cidrIdentity = (p: string) => CIDR_IDS.get(p);
const peerArb = fc.oneof(
  { weight: 4, arbitrary: selectorArb.map((selector) => ({ selector })) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('10.0.0.0/8', '10.1.0.0/16', '10.1.0.0/24', '10.2.0.0/16', '192.168.0.0/16')
      .map((cidr) => ({ cidr })),
  },
);
const ruleArb = fc.record({ peer: peerArb, toPorts: portsArb });
const policyArb = fc.record({
  kind: fc.constantFrom('cnp', 'ccnp', 'np'),
  cluster: fc.constantFrom(...clusters),
  ns: fc.constantFrom(...namespaces),
  subject: selectorArb,
  section: fc.constantFrom('ingress', 'egress', 'ingressDeny', 'egressDeny'),
  rules: fc.array(ruleArb, { minLength: 1, maxLength: 2 }),
  audit: fc.boolean(),
});

type P = typeof policyArb extends fc.Arbitrary<infer T> ? T : never;

function toPolicy(p: P, i: number): PolicyObject {
  const opts = {
    cluster: p.cluster,
    namespace: p.ns,
    ...(p.audit ? { annotations: { 'policy.meshplane.io/audit': 'true' } } : {}),
  };
  if (p.kind === 'np') {
    const section = p.section.startsWith('ingress') ? 'ingress' : 'egress';
    const peerKey = section === 'ingress' ? 'from' : 'to';
    const rules = p.rules.map((r) => ({
      [peerKey]: [
        'cidr' in r.peer
          ? { ipBlock: { cidr: r.peer.cidr } }
          : { namespaceSelector: {}, podSelector: r.peer.selector },
      ],
      ...(r.toPorts
        ? { ports: [{ port: r.toPorts[0].ports[0].port === 'http' ? 'http' : 80 }] }
        : {}),
    }));
    return np(
      `p${i}`,
      {
        podSelector: p.subject,
        policyTypes: [section === 'ingress' ? 'Ingress' : 'Egress'],
        [section]: rules,
      },
      opts,
    );
  }
  const dir = p.section.startsWith('ingress') ? 'from' : 'to';
  const rules = p.rules.map((r) => ({
    ...('cidr' in r.peer
      ? { [`${dir}CIDR`]: [r.peer.cidr] }
      : { [`${dir}Endpoints`]: [r.peer.selector] }),
    ...(r.toPorts ? { toPorts: r.toPorts } : {}),
  }));
  const spec = { endpointSelector: p.subject, [p.section]: rules };
  return p.kind === 'cnp' ? cnp(`p${i}`, spec, opts) : ccnp(`p${i}`, spec, opts);
}

function identity(x: { id: number; app: string; ns: string; cluster: string }): IdentityInfo {
  return {
    id: x.id,
    cluster: x.cluster,
    labels: {
      'k8s:app': x.app,
      'k8s:io.kubernetes.pod.namespace': x.ns,
      'k8s:io.cilium.k8s.policy.cluster': x.cluster,
    },
  };
}

const endpointArb = fc.record({
  n: fc.integer({ min: 0, max: 6 }),
  id: fc.integer({ min: 256, max: 263 }),
  cluster: fc.constantFrom(...clusters),
  port: fc.constantFrom(80, 8080),
});

const opArb = fc.oneof(
  // Policies p0..p3: re-adding a name may change its kind (then it is another policy).
  fc.record({
    op: fc.constant('upsertPolicy' as const),
    slot: fc.integer({ min: 0, max: 3 }),
    p: policyArb,
  }),
  fc.record({ op: fc.constant('removePolicy' as const), n: fc.nat() }),
  fc.record({ op: fc.constant('addIdentity' as const), x: identityArb }),
  fc.record({ op: fc.constant('removeIdentity' as const), id: fc.integer({ min: 256, max: 263 }) }),
  endpointArb.map((x) => ({ op: 'addEndpoint' as const, ...x })),
  fc.record({
    op: fc.constant('removeEndpoint' as const),
    n: fc.integer({ min: 0, max: 6 }),
    cluster: fc.constantFrom(...clusters),
  }),
);

function endpoint(n: number, id: number, cluster: string, port: number): EndpointInfo {
  return {
    cluster,
    namespace: 'n1',
    name: `pod${n}`,
    identity: id,
    ips: [`10.${cluster === 'eu' ? 1 : 2}.0.${n + 1}`],
    namedPorts: [{ name: 'http', port, protocol: 'TCP' }],
  };
}

type Shadow = Map<
  string,
  { ingressEnforced: boolean; egressEnforced: boolean; entries: Map<string, number> }
>;

function applyDeltas(shadow: Shadow, deltas: EndpointDelta[]): void {
  for (const d of deltas) {
    if (!d.present) {
      shadow.delete(d.endpoint);
      continue;
    }
    const s = shadow.get(d.endpoint) ?? {
      ingressEnforced: false,
      egressEnforced: false,
      entries: new Map(),
    };
    s.ingressEnforced = d.ingressEnforced;
    s.egressEnforced = d.egressEnforced;
    for (const k of d.deletes) s.entries.delete(policyKeyString(k));
    for (const u of d.upserts) s.entries.set(policyKeyString(u), u.verdict);
    shadow.set(d.endpoint, s);
  }
}

function view(results: EndpointPolicyResult[]): Shadow {
  return new Map(
    results.map((r) => [
      `${r.cluster}/${r.namespace}/${r.name}`,
      {
        ingressEnforced: r.ingressEnforced,
        egressEnforced: r.egressEnforced,
        entries: new Map(r.entries.map((e) => [policyKeyString(e), e.verdict])),
      },
    ]),
  );
}

function policyKey(p: PolicyObject): string {
  return `${p.cluster}/${p.kind}/${p.namespace}/${p.name}`;
}

describe('incremental compile', () => {
  it('deltas applied to the previous maps equal a full compile', () => {
    fc.assert(
      fc.property(
        fc.array(policyArb, { minLength: 1, maxLength: 5 }),
        fc.array(identityArb, { minLength: 2, maxLength: 8 }),
        fc.array(endpointArb, { minLength: 2, maxLength: 14 }),
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (ps, ids0, eps0, ops) => {
          // The model: a Map keeps a replaced policy in place and adds a new one last, as the engine does.
          const policies = new Map<string, PolicyObject>();
          for (const [i, p] of ps.entries())
            policies.set(policyKey(toPolicy(p, i)), toPolicy(p, i));
          const { units, errors } = parsePolicies([...policies.values()]);
          expect(errors).toEqual([]);
          const identities = new Map<number, IdentityInfo>();
          for (const x of ids0) identities.set(x.id, identity(x));
          const endpoints = new Map<string, EndpointInfo>();
          for (const x of eps0) {
            endpoints.set(`${x.cluster}/n1/pod${x.n}`, endpoint(x.n, x.id, x.cluster, x.port));
          }
          const engine = new PolicyEngine(
            units,
            { identities: [...identities.values()], endpoints: [...endpoints.values()] },
            { cidrIdentity },
          );
          const shadow: Shadow = view(engine.results());
          for (const op of ops) {
            let deltas: EndpointDelta[];
            if (op.op === 'upsertPolicy') {
              const p = toPolicy(op.p, op.slot);
              policies.set(policyKey(p), p);
              const parsed = parsePolicy(p);
              if (!parsed.ok) throw new Error(parsed.errors[0]!.message);
              deltas = engine.upsertPolicy(parsed.value);
            } else if (op.op === 'removePolicy') {
              const keys = [...policies.keys()];
              if (keys.length === 0) continue;
              const p = policies.get(keys[op.n % keys.length]!)!;
              policies.delete(policyKey(p));
              deltas = engine.removePolicy(p);
            } else if (op.op === 'addIdentity') {
              identities.set(op.x.id, identity(op.x));
              deltas = engine.upsertIdentity(identity(op.x));
            } else if (op.op === 'removeIdentity') {
              identities.delete(op.id);
              deltas = engine.removeIdentity(op.id);
            } else if (op.op === 'addEndpoint') {
              const ep = endpoint(op.n, op.id, op.cluster, op.port);
              endpoints.set(`${op.cluster}/n1/pod${op.n}`, ep);
              deltas = engine.upsertEndpoint(ep);
            } else {
              endpoints.delete(`${op.cluster}/n1/pod${op.n}`);
              deltas = engine.removeEndpoint(`${op.cluster}/n1/pod${op.n}`);
            }
            applyDeltas(shadow, deltas);
            const full = new PolicyEngine(
              parsePolicies([...policies.values()]).units,
              { identities: [...identities.values()], endpoints: [...endpoints.values()] },
              { cidrIdentity },
            );
            const fullResults = full.results();
            expect(shadow).toEqual(view(fullResults));
            expect(engine.results()).toEqual(fullResults);
            expect(engine.policies()).toEqual(full.policies());
            expect(engine.prefixes).toEqual(full.prefixes);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
