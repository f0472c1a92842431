import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { policyKeyString } from '../../common/index.js';
import type {
  EndpointDelta,
  EndpointInfo,
  EndpointPolicyResult,
  IdentityInfo,
} from '../../controlplane/policy/index.js';
import { PolicyEngine, parsePolicies } from '../../controlplane/policy/index.js';
import { ccnp, cnp, np } from './fixtures.js';

// Random policy sets and random identity/endpoint churn: applying the
// engine's per-endpoint deltas gives exactly what a full compile gives.
const apps = ['a', 'b', 'c'];
const namespaces = ['n1', 'n2'];
const clusters = ['eu', 'us'];

const identityArb = fc.record({
  id: fc.integer({ min: 256, max: 270 }),
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
const ruleArb = fc.record({ peer: selectorArb, toPorts: portsArb });
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

function toPolicy(p: P, i: number) {
  const opts = {
    cluster: p.cluster,
    namespace: p.ns,
    ...(p.audit ? { annotations: { 'policy.meshplane.io/audit': 'true' } } : {}),
  };
  if (p.kind === 'np') {
    const section = p.section.startsWith('ingress') ? 'ingress' : 'egress';
    const peerKey = section === 'ingress' ? 'from' : 'to';
    const rules = p.rules.map((r) => ({
      [peerKey]: [{ namespaceSelector: {}, podSelector: r.peer }],
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
    [`${dir}Endpoints`]: [r.peer],
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

const opArb = fc.oneof(
  fc.record({ op: fc.constant('addIdentity' as const), x: identityArb }),
  fc.record({ op: fc.constant('removeIdentity' as const), id: fc.integer({ min: 256, max: 270 }) }),
  fc.record({
    op: fc.constant('addEndpoint' as const),
    n: fc.integer({ min: 0, max: 6 }),
    id: fc.integer({ min: 256, max: 270 }),
    cluster: fc.constantFrom(...clusters),
    port: fc.constantFrom(80, 8080),
  }),
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

describe('incremental compile', () => {
  it('deltas applied to the previous maps equal a full compile', () => {
    fc.assert(
      fc.property(
        fc.array(policyArb, { maxLength: 5 }),
        fc.array(identityArb, { maxLength: 5 }),
        fc.array(opArb, { minLength: 1, maxLength: 25 }),
        (ps, ids0, ops) => {
          const { units, errors } = parsePolicies(ps.map(toPolicy));
          expect(errors).toEqual([]);
          const identities = new Map<number, IdentityInfo>();
          for (const x of ids0) identities.set(x.id, identity(x));
          const endpoints = new Map<string, EndpointInfo>();
          const engine = new PolicyEngine(units, {
            identities: [...identities.values()],
            endpoints: [],
          });
          const shadow: Shadow = view(engine.results());
          for (const op of ops) {
            let deltas: EndpointDelta[];
            if (op.op === 'addIdentity') {
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
            const full = new PolicyEngine(units, {
              identities: [...identities.values()],
              endpoints: [...endpoints.values()],
            });
            expect(shadow).toEqual(view(full.results()));
            expect(view(engine.results())).toEqual(view(full.results()));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
