import { describe, expect, it } from 'vitest';
import { ccnp, cnp, np, world, type PodSpec } from './fixtures.js';

const pods: PodSpec[] = [
  {
    ns: 'prod',
    name: 'be',
    labels: { app: 'backend' },
    ip: '10.1.0.10',
    ports: [{ name: 'http', port: 8080 }],
  },
  { ns: 'prod', name: 'fe', labels: { app: 'frontend' }, ip: '10.1.0.11' },
  { ns: 'prod', name: 'old', labels: { app: 'legacy' }, ip: '10.1.0.12' },
  { ns: 'other', name: 'fe', labels: { app: 'frontend' }, ip: '10.1.1.11' },
  { cluster: 'us', ns: 'prod', name: 'fe', labels: { app: 'frontend' }, ip: '10.2.0.11' },
  { cluster: 'us', ns: 'prod', name: 'be', labels: { app: 'backend' }, ip: '10.2.0.10' },
];
const backend = { endpointSelector: { matchLabels: { app: 'backend' } } };
const fromFrontend = { fromEndpoints: [{ matchLabels: { app: 'frontend' } }] };

describe('CiliumNetworkPolicy (docs examples)', () => {
  it('L3: fromEndpoints restricted to the policy namespace and the local cluster', () => {
    const w = world(
      [cnp('l3', { ...backend, ingress: [fromFrontend] }, { namespace: 'prod' })],
      pods,
    );
    expect(w.allowed('prod/fe', 'prod/be', 1234)).toBe(true);
    expect(w.allowed('other/fe', 'prod/be', 1234)).toBe(false);
    expect(w.allowed('us/prod/fe', 'prod/be', 1234)).toBe(false);
    expect(w.allowed('prod/old', 'prod/be', 1234)).toBe(false);
    // The policy applies to endpoints of its own cluster only.
    expect(w.result('us/prod/be')!.ingressEnforced).toBe(false);
  });

  it('naming the namespace label reaches another namespace', () => {
    const sel = { matchLabels: { app: 'frontend', 'k8s:io.kubernetes.pod.namespace': 'other' } };
    const w = world(
      [cnp('ns', { ...backend, ingress: [{ fromEndpoints: [sel] }] }, { namespace: 'prod' })],
      pods,
    );
    expect(w.allowed('other/fe', 'prod/be', 1)).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 1)).toBe(false);
  });

  it('cluster constraints: In names clusters, NotIn means any cluster but these', () => {
    const inUs = { matchLabels: { app: 'frontend', 'io.cilium.k8s.policy.cluster': 'us' } };
    const w = world(
      [cnp('c', { ...backend, ingress: [{ fromEndpoints: [inUs] }] }, { namespace: 'prod' })],
      pods,
    );
    expect(w.allowed('us/prod/fe', 'prod/be', 1)).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 1)).toBe(false);
    const notEu = {
      matchLabels: { app: 'frontend' },
      matchExpressions: [
        { key: 'io.cilium.k8s.policy.cluster', operator: 'NotIn', values: ['eu'] },
      ],
    };
    const w2 = world(
      [cnp('c', { ...backend, ingress: [{ fromEndpoints: [notEu] }] }, { namespace: 'prod' })],
      pods,
    );
    expect(w2.allowed('us/prod/fe', 'prod/be', 1)).toBe(true);
    expect(w2.allowed('prod/fe', 'prod/be', 1)).toBe(false);
  });

  it('Kubernetes NetworkPolicy podSelector peers are local-cluster too', () => {
    const p = np(
      'k',
      {
        podSelector: { matchLabels: { app: 'backend' } },
        ingress: [
          { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: 'frontend' } } }] },
        ],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods);
    expect(w.allowed('other/fe', 'prod/be', 1)).toBe(true);
    expect(w.allowed('us/prod/fe', 'prod/be', 1)).toBe(false);
  });

  it('L4: a port without protocol matches any protocol; named ports', () => {
    const p = cnp(
      'l4',
      {
        ...backend,
        ingress: [
          {
            ...fromFrontend,
            toPorts: [{ ports: [{ port: '80' }, { port: 'http', protocol: 'TCP' }] }],
          },
        ],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods);
    expect(w.allowed('prod/fe', 'prod/be', 80, 'TCP')).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 80, 'UDP')).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 8080, 'TCP')).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 8081, 'TCP')).toBe(false);
  });

  it('toPorts without peers applies to every peer; an empty rule only turns on default deny', () => {
    const w = world(
      [
        cnp(
          'p',
          { ...backend, ingress: [{ toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
          { namespace: 'prod' },
        ),
      ],
      pods,
    );
    expect(w.allowed('us/prod/fe', 'prod/be', 80)).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 81)).toBe(false);
    const w2 = world([cnp('d', { ...backend, ingress: [{}] }, { namespace: 'prod' })], pods);
    expect(w2.allowed('prod/fe', 'prod/be', 80)).toBe(false);
  });

  it('L7 http rules allow at L4 and trace says so', () => {
    const p = cnp(
      'l7',
      {
        ...backend,
        ingress: [
          {
            ...fromFrontend,
            toPorts: [
              {
                ports: [{ port: '8080', protocol: 'TCP' }],
                rules: { http: [{ method: 'GET', path: '/public' }] },
              },
            ],
          },
        ],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods);
    const r = w.probe('prod/fe', 'prod/be', 8080);
    expect(r.allowed).toBe(true);
    expect(r.reason).toMatch(/L7 rules not enforced/);
    expect(w.warnings.map((x) => x.message).join()).toMatch(/L7 rules not enforced/);
  });
});

describe('deny rules', () => {
  it('deny beats allow across policy kinds', () => {
    const allowAll = np('all', { podSelector: {}, ingress: [{}] }, { namespace: 'prod' });
    const deny = ccnp('deny-legacy', {
      endpointSelector: { matchLabels: { app: 'backend' } },
      ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'legacy' } }] }],
    });
    const w = world([allowAll, deny], pods);
    const r = w.probe('prod/old', 'prod/be', 80);
    expect(r).toMatchObject({
      allowed: false,
      decision: {
        kind: 'policy',
        section: 'ingressDeny',
        ruleIndex: 0,
        policy: { kind: 'CiliumClusterwideNetworkPolicy', name: 'deny-legacy' },
      },
    });
    expect(w.allowed('prod/fe', 'prod/be', 80)).toBe(true);
  });

  it('a port deny beats a broader allow', () => {
    const p = cnp(
      'mix',
      {
        ...backend,
        ingress: [{ fromEntities: ['all'] }],
        ingressDeny: [{ ...fromFrontend, toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] }],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods);
    expect(w.allowed('prod/fe', 'prod/be', 22)).toBe(false);
    expect(w.allowed('prod/fe', 'prod/be', 23)).toBe(true);
    expect(w.allowed('prod/old', 'prod/be', 22)).toBe(true);
  });

  it('a deny-only policy selects the endpoint (default deny) unless enableDefaultDeny is false', () => {
    const denyOnly = {
      ...backend,
      ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'legacy' } }] }],
    };
    const w = world([cnp('d', denyOnly, { namespace: 'prod' })], pods);
    expect(w.allowed('prod/fe', 'prod/be', 80)).toBe(false);
    expect(w.result('prod/be')!.ingressEnforced).toBe(true);
    const w2 = world(
      [cnp('d', { ...denyOnly, enableDefaultDeny: { ingress: false } }, { namespace: 'prod' })],
      pods,
    );
    expect(w2.allowed('prod/fe', 'prod/be', 80)).toBe(true);
    expect(w2.allowed('prod/old', 'prod/be', 80)).toBe(false);
    expect(w2.result('prod/be')!.ingressEnforced).toBe(false);
  });
});

describe('entities and CIDR', () => {
  const cidr = (p: string) =>
    ({ '198.18.0.0/15': 0x1000001, '198.18.5.0/24': 0x1000002, '10.1.0.0/16': 0x1000003 })[p];

  it('world, cluster, host', () => {
    const p = cnp(
      'e',
      {
        endpointSelector: { matchLabels: { app: 'frontend' } },
        egress: [{ toEntities: ['world'] }],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods, { cidr });
    expect(w.allowed('prod/fe', '203.0.113.9', 443)).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 443)).toBe(false);
    const c = world(
      [
        cnp(
          'c',
          {
            endpointSelector: { matchLabels: { app: 'frontend' } },
            egress: [{ toEntities: ['cluster'] }],
          },
          { namespace: 'prod' },
        ),
      ],
      pods,
      { cidr },
    );
    expect(c.allowed('prod/fe', 'prod/be', 1)).toBe(true);
    expect(c.allowed('prod/fe', 'us/prod/be', 1)).toBe(false);
    expect(c.allowed('prod/fe', '203.0.113.9', 1)).toBe(false);
    const ids = c.result('prod/fe')!.entries.map((e) => e.identity);
    for (const reserved of [1, 3, 4, 5, 6, 7, 8]) expect(ids).toContain(reserved);
    expect(ids).not.toContain(2);
  });

  it('toCIDRSet with except; Cilium CIDR does not match pods', () => {
    const p = cnp(
      'cidr',
      {
        endpointSelector: { matchLabels: { app: 'frontend' } },
        egress: [
          { toCIDRSet: [{ cidr: '198.18.0.0/15', except: ['198.18.5.0/24'] }] },
          { toCIDR: ['10.1.0.0/16'] },
        ],
      },
      { namespace: 'prod' },
    );
    const w = world([p], pods, { cidr });
    expect(w.allowed('prod/fe', '198.18.0.10', 443)).toBe(true);
    expect(w.allowed('prod/fe', '198.18.5.10', 443)).toBe(false);
    expect(w.allowed('prod/fe', '10.1.200.1', 443)).toBe(true);
    expect(w.allowed('prod/fe', 'prod/be', 443)).toBe(false);
  });
});

describe('audit mode', () => {
  it('reports what it would deny without enforcing', () => {
    const p = cnp(
      'a',
      { ...backend, ingress: [fromFrontend] },
      { namespace: 'prod', annotations: { 'policy.meshplane.io/audit': 'true' } },
    );
    const w = world([p], pods);
    expect(w.result('prod/be')!.ingressEnforced).toBe(false);
    const r = w.probe('prod/old', 'prod/be', 80);
    expect(r.allowed).toBe(true);
    expect(r.reason).toMatch(/^audit:/);
    expect(w.probe('prod/fe', 'prod/be', 80).reason).toMatch(/^allowed by/);
  });

  it('audited deny rules are reported where an enforcing policy allows', () => {
    const allow = cnp(
      'allow',
      { ...backend, ingress: [{ fromEntities: ['all'] }] },
      { namespace: 'prod' },
    );
    const deny = cnp(
      'deny',
      { ...backend, ingressDeny: [fromFrontend] },
      { namespace: 'prod', annotations: { 'policy.meshplane.io/audit': 'true' } },
    );
    const w = world([allow, deny], pods);
    expect(w.probe('prod/fe', 'prod/be', 80)).toMatchObject({
      allowed: true,
      decision: { policy: { name: 'deny' }, section: 'ingressDeny' },
    });
    expect(w.probe('prod/fe', 'prod/be', 80).reason).toMatch(/would deny/);
  });
});
