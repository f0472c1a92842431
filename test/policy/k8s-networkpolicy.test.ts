import { describe, expect, it } from 'vitest';
import { np, world, type PodSpec } from './fixtures.js';

// Kubernetes NetworkPolicy semantics as documented upstream
// (kubernetes.io/docs/concepts/services-networking/network-policies).
const pods: PodSpec[] = [
  {
    ns: 'prod',
    name: 'db',
    labels: { role: 'db' },
    ip: '10.1.0.10',
    ports: [{ name: 'pg', port: 5432 }],
  },
  { ns: 'prod', name: 'api', labels: { role: 'api' }, ip: '10.1.0.11' },
  { ns: 'prod', name: 'web', labels: { role: 'web' }, ip: '10.1.0.12' },
  { ns: 'dev', name: 'api', labels: { role: 'api' }, ip: '10.1.1.11' },
  { ns: 'dev', name: 'tool', labels: { role: 'tool' }, ip: '10.1.1.12' },
  { ns: 'ops', name: 'api', labels: { role: 'api' }, ip: '10.1.2.11' },
];
const nsLabels = { prod: { env: 'prod' }, dev: { env: 'dev' }, ops: { env: 'ops', team: 'sre' } };
const dbSelector = { podSelector: { matchLabels: { role: 'db' } } };

describe('Kubernetes NetworkPolicy peers', () => {
  const cases: {
    name: string;
    from: unknown[] | undefined;
    allowed: string[];
    denied: string[];
  }[] = [
    {
      name: 'podSelector alone: same namespace only',
      from: [{ podSelector: { matchLabels: { role: 'api' } } }],
      allowed: ['prod/api'],
      denied: ['dev/api', 'ops/api', 'prod/web'],
    },
    {
      name: 'namespaceSelector alone: every pod of the namespaces',
      from: [{ namespaceSelector: { matchLabels: { env: 'dev' } } }],
      allowed: ['dev/api', 'dev/tool'],
      denied: ['prod/api', 'ops/api'],
    },
    {
      name: 'namespaceSelector AND podSelector in one peer',
      from: [
        {
          namespaceSelector: { matchLabels: { env: 'dev' } },
          podSelector: { matchLabels: { role: 'api' } },
        },
      ],
      allowed: ['dev/api'],
      denied: ['dev/tool', 'prod/api', 'ops/api'],
    },
    {
      name: 'namespaceSelector OR podSelector as two peers',
      from: [
        { namespaceSelector: { matchLabels: { env: 'dev' } } },
        { podSelector: { matchLabels: { role: 'api' } } },
      ],
      allowed: ['dev/api', 'dev/tool', 'prod/api'],
      denied: ['ops/api', 'prod/web'],
    },
    {
      name: 'empty podSelector: every pod of the namespace',
      from: [{ podSelector: {} }],
      allowed: ['prod/api', 'prod/web'],
      denied: ['dev/api'],
    },
    {
      name: 'empty namespaceSelector: every pod of every namespace',
      from: [{ namespaceSelector: {} }],
      allowed: ['prod/api', 'dev/tool', 'ops/api'],
      denied: [],
    },
    {
      name: 'namespaceSelector with matchExpressions',
      from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'Exists' }] } }],
      allowed: ['ops/api'],
      denied: ['dev/api', 'prod/api'],
    },
    {
      name: 'kubernetes.io/metadata.name selects a namespace by name',
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } } }],
      allowed: ['ops/api'],
      denied: ['dev/api'],
    },
    {
      name: 'from absent: every source',
      from: undefined,
      allowed: ['prod/api', 'dev/tool', 'ops/api'],
      denied: [],
    },
    {
      name: 'from empty list: every source',
      from: [],
      allowed: ['prod/api', 'dev/tool'],
      denied: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const rule = c.from === undefined ? {} : { from: c.from };
      const w = world([np('db', { ...dbSelector, ingress: [rule] }, { namespace: 'prod' })], pods, {
        nsLabels,
      });
      for (const src of c.allowed)
        expect(w.allowed(src, 'prod/db', 5432), `${src} allowed`).toBe(true);
      for (const src of c.denied)
        expect(w.allowed(src, 'prod/db', 5432), `${src} denied`).toBe(false);
    });
  }
});

describe('Kubernetes NetworkPolicy ingress and egress', () => {
  it('ingress: [] (or no ingress) with policyTypes Ingress denies all ingress', () => {
    for (const spec of [
      { ...dbSelector, ingress: [] },
      { ...dbSelector, policyTypes: ['Ingress'] },
    ]) {
      const w = world([np('deny', spec, { namespace: 'prod' })], pods, { nsLabels });
      expect(w.allowed('prod/api', 'prod/db', 5432)).toBe(false);
      expect(w.probe('prod/api', 'prod/db', 5432).decision.kind).toBe('default-deny');
      expect(w.result('prod/db')).toMatchObject({
        ingressEnforced: true,
        egressEnforced: false,
        entries: [],
      });
    }
  });

  it('an unselected pod allows everything (no-policy)', () => {
    const w = world([np('deny', { ...dbSelector, ingress: [] }, { namespace: 'prod' })], pods, {
      nsLabels,
    });
    const r = w.probe('prod/db', 'prod/web', 80);
    expect(r).toMatchObject({ allowed: true, decision: { kind: 'no-policy' } });
  });

  it('ingress rule {} allows all ingress', () => {
    const w = world([np('all', { ...dbSelector, ingress: [{}] }, { namespace: 'prod' })], pods, {
      nsLabels,
    });
    expect(w.allowed('ops/api', 'prod/db', 1)).toBe(true);
    expect(w.result('prod/db')!.ingressEnforced).toBe(true);
  });

  it('policyTypes defaults to Egress only when egress rules exist', () => {
    const withEgress = world(
      [
        np(
          'e',
          { ...dbSelector, egress: [{ to: [{ podSelector: { matchLabels: { role: 'api' } } }] }] },
          { namespace: 'prod' },
        ),
      ],
      pods,
      { nsLabels },
    );
    expect(withEgress.result('prod/db')).toMatchObject({
      ingressEnforced: true,
      egressEnforced: true,
    });
    expect(withEgress.allowed('prod/db', 'prod/api', 80)).toBe(true);
    expect(withEgress.allowed('prod/db', 'prod/web', 80)).toBe(false);
    const emptyEgress = world(
      [np('e', { ...dbSelector, egress: [] }, { namespace: 'prod' })],
      pods,
      { nsLabels },
    );
    expect(emptyEgress.result('prod/db')).toMatchObject({
      ingressEnforced: true,
      egressEnforced: false,
    });
  });

  it('policyTypes [Egress] leaves ingress open; egress: [] denies all egress', () => {
    const w = world(
      [np('e', { ...dbSelector, policyTypes: ['Egress'], egress: [] }, { namespace: 'prod' })],
      pods,
      { nsLabels },
    );
    expect(w.allowed('prod/api', 'prod/db', 5432)).toBe(true);
    expect(w.allowed('prod/db', 'prod/api', 80)).toBe(false);
  });

  it('policies are additive: the union of their rules', () => {
    const a = np(
      'a',
      { ...dbSelector, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'api' } } }] }] },
      { namespace: 'prod' },
    );
    const b = np(
      'b',
      { ...dbSelector, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'web' } } }] }] },
      { namespace: 'prod' },
    );
    const w = world([a, b], pods, { nsLabels });
    expect(w.allowed('prod/api', 'prod/db', 5432)).toBe(true);
    expect(w.allowed('prod/web', 'prod/db', 5432)).toBe(true);
  });

  it('both ends must allow: egress of the source and ingress of the destination', () => {
    const ing = np(
      'ing',
      { ...dbSelector, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'api' } } }] }] },
      { namespace: 'prod' },
    );
    const eg = np(
      'eg',
      {
        podSelector: { matchLabels: { role: 'api' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ podSelector: { matchLabels: { role: 'web' } } }] }],
      },
      { namespace: 'prod' },
    );
    const w = world([ing, eg], pods, { nsLabels });
    const r = w.probe('prod/api', 'prod/db', 5432);
    expect(r.allowed).toBe(false);
    expect(r.decision).toMatchObject({
      kind: 'default-deny',
      section: 'egress',
      policy: { name: 'eg' },
    });
  });
});

describe('Kubernetes NetworkPolicy ports', () => {
  const rule = (ports: unknown[]) =>
    np(
      'p',
      { ...dbSelector, ingress: [{ from: [{ namespaceSelector: {} }], ports }] },
      { namespace: 'prod' },
    );

  it('a port without protocol is TCP', () => {
    const w = world([rule([{ port: 5432 }])], pods, { nsLabels });
    expect(w.allowed('prod/api', 'prod/db', 5432, 'TCP')).toBe(true);
    expect(w.allowed('prod/api', 'prod/db', 5432, 'UDP')).toBe(false);
    expect(w.allowed('prod/api', 'prod/db', 5433)).toBe(false);
  });

  it('protocol without port: every port of that protocol', () => {
    const w = world([rule([{ protocol: 'UDP' }])], pods, { nsLabels });
    expect(w.allowed('prod/api', 'prod/db', 53, 'UDP')).toBe(true);
    expect(w.allowed('prod/api', 'prod/db', 53, 'TCP')).toBe(false);
  });

  it('endPort makes a range; SCTP is a protocol', () => {
    const w = world(
      [
        rule([
          { port: 32000, endPort: 32768 },
          { protocol: 'SCTP', port: 9 },
        ]),
      ],
      pods,
      { nsLabels },
    );
    expect(w.allowed('prod/api', 'prod/db', 32000)).toBe(true);
    expect(w.allowed('prod/api', 'prod/db', 32768)).toBe(true);
    expect(w.allowed('prod/api', 'prod/db', 32769)).toBe(false);
    expect(w.allowed('prod/api', 'prod/db', 9, 'SCTP')).toBe(true);
  });

  it('ingress named ports resolve against the selected pod', () => {
    const w = world([rule([{ port: 'pg' }])], pods, { nsLabels });
    expect(w.allowed('prod/api', 'prod/db', 5432)).toBe(true);
    expect(w.allowed('prod/api', 'prod/db', 5433)).toBe(false);
  });

  it('egress named ports resolve against the destination pods; disagreeing pods are unenforceable', () => {
    const egress = np(
      'e',
      {
        podSelector: { matchLabels: { role: 'api' } },
        policyTypes: ['Egress'],
        egress: [{ ports: [{ port: 'http' }] }],
      },
      { namespace: 'prod' },
    );
    const agree: PodSpec[] = [
      ...pods,
      {
        ns: 'prod',
        name: 'svc-a',
        labels: { role: 'svc' },
        ip: '10.1.0.20',
        ports: [{ name: 'http', port: 8080 }],
      },
      {
        ns: 'prod',
        name: 'svc-b',
        labels: { role: 'svc' },
        ip: '10.1.0.21',
        ports: [{ name: 'http', port: 8080 }],
      },
    ];
    const w = world([egress], agree, { nsLabels });
    expect(w.allowed('prod/api', 'prod/svc-a', 8080)).toBe(true);
    expect(w.allowed('prod/api', 'prod/svc-a', 80)).toBe(false);
    expect(w.result('prod/api')!.errors).toEqual([]);
    const disagree = [
      ...agree.slice(0, -1),
      {
        ns: 'prod',
        name: 'svc-b',
        labels: { role: 'svc' },
        ip: '10.1.0.21',
        ports: [{ name: 'http', port: 9090 }],
      },
    ];
    const w2 = world([egress], disagree, { nsLabels });
    expect(w2.result('prod/api')!.errors[0]!.message).toMatch(
      /named port "http" resolves differently/,
    );
  });
});

describe('Kubernetes NetworkPolicy ipBlock', () => {
  const extra: PodSpec[] = [
    ...pods,
    { ns: 'dev', name: 'lab', labels: { role: 'lab' }, ip: '10.9.0.5' },
  ];
  const cidr = (p: string) =>
    ({
      '10.1.0.0/16': 0x1000001,
      '10.1.1.0/24': 0x1000002,
      '198.18.0.0/15': 0x1000003,
      '10.9.0.0/16': 0x1000004,
    })[p];

  it('matches pod IPs too (Kubernetes semantics), except carves out', () => {
    const p = np(
      'ip',
      {
        ...dbSelector,
        ingress: [{ from: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.1.0/24'] } }] }],
      },
      { namespace: 'prod' },
    );
    const w = world([p], extra, { nsLabels, cidr });
    expect(w.allowed('prod/api', 'prod/db', 5432)).toBe(true);
    expect(w.allowed('ops/api', 'prod/db', 5432)).toBe(true);
    expect(w.allowed('dev/api', 'prod/db', 5432)).toBe(false);
    expect(w.allowed('dev/lab', 'prod/db', 5432)).toBe(false);
    const ids = w.result('prod/db')!.entries.map((e) => e.identity);
    expect(ids).toContain(0x1000001);
    expect(ids).not.toContain(0x1000002);
  });

  it('egress to an address outside the mesh uses the CIDR identity', () => {
    const p = np(
      'out',
      {
        podSelector: { matchLabels: { role: 'api' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ ipBlock: { cidr: '198.18.0.0/15' } }], ports: [{ port: 443 }] }],
      },
      { namespace: 'prod' },
    );
    const w = world([p], extra, { nsLabels, cidr });
    expect(w.allowed('prod/api', '198.18.0.10', 443)).toBe(true);
    expect(w.allowed('prod/api', '203.0.113.1', 443)).toBe(false);
  });

  it('an identity with pods on both sides of a block is reported, not over- or under-allowed', () => {
    const straddle: PodSpec[] = [
      ...pods,
      { ns: 'dev', name: 'api-2', labels: { role: 'api' }, ip: '10.9.0.7' },
    ];
    const p = np(
      'ip',
      { ...dbSelector, ingress: [{ from: [{ ipBlock: { cidr: '10.1.0.0/16' } }] }] },
      { namespace: 'prod' },
    );
    const w = world([p], straddle, { nsLabels, cidr });
    expect(
      w
        .result('prod/db')!
        .errors.map((e) => e.message)
        .join(),
    ).toMatch(/unenforceable: pods of identity \d+ fall on both sides/);
  });

  it('a missing CIDR identity is an error for the endpoint', () => {
    const p = np(
      'ip',
      { ...dbSelector, ingress: [{ from: [{ ipBlock: { cidr: '172.16.0.0/12' } }] }] },
      { namespace: 'prod' },
    );
    const w = world([p], pods, { nsLabels, cidr });
    expect(w.result('prod/db')!.errors[0]!.message).toMatch(
      /no CIDR identity allocated for 172.16.0.0\/12/,
    );
  });
});
