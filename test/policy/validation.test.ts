import { describe, expect, it } from 'vitest';
import { validatePolicy, parsePolicy } from '../../controlplane/policy/index.js';
import { ccnp, cnp, np } from './fixtures.js';

const issues = (p: Parameters<typeof validatePolicy>[0]) =>
  validatePolicy(p).map((i) => `${i.severity} ${i.field}: ${i.message}`);

describe('policy validation', () => {
  it('collects every error with its field path', () => {
    const p = cnp('bad', {
      endpointSelector: { matchLabels: { app: 'x' } },
      ingress: [
        {
          fromEndpoints: [{ matchExpressions: [{ key: 'a', operator: 'Near', values: ['b'] }] }],
          toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }, { port: '70000' }] }],
        },
        { fromCIDR: ['10.0.0.1/8'] },
      ],
      egress: [{ toFQDNs: [{ matchName: 'example.com' }] }, { toEntities: ['galaxy'] }],
    });
    const r = parsePolicy(p);
    expect(r.ok).toBe(false);
    expect(issues(p)).toEqual([
      'error spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, got "Near"',
      'error spec.ingress[0].toPorts[0].ports[1].port: must be a port 1..65535 or a port name, got "70000"',
      'error spec.ingress[1].fromCIDR[0]: "10.0.0.1/8" has host bits set (use 10.0.0.0/8)',
      'error spec.egress[0].toFQDNs: toFQDNs is not implemented by meshplane',
      'error spec.egress[1].toEntities[0]: unknown entity "galaxy"; one of all, world, world-ipv4, world-ipv6, cluster, host, remote-node, init, ingress, health, unmanaged, kube-apiserver, none',
    ]);
    expect(validatePolicy(p)[0]).toMatchObject({ object: 'CiliumNetworkPolicy/default/bad' });
  });

  it('names every unimplemented field', () => {
    for (const [section, field] of [
      ['ingress', 'fromRequires'],
      ['ingress', 'icmps'],
      ['ingress', 'authentication'],
      ['egress', 'toServices'],
      ['egress', 'toGroups'],
    ] as const) {
      const p = cnp('u', { endpointSelector: {}, [section]: [{ [field]: [] }] });
      expect(issues(p)).toEqual([
        `error spec.${section}[0].${field}: ${field} is not implemented by meshplane`,
      ]);
    }
    const dns = cnp('dns', {
      endpointSelector: {},
      egress: [{ toPorts: [{ ports: [{ port: '53' }], rules: { dns: [{ matchPattern: '*' }] } }] }],
    });
    expect(issues(dns)).toEqual([
      'error spec.egress[0].toPorts[0].rules.dns: dns is not implemented by meshplane',
    ]);
  });

  it('warns about L7 rules and misspelt cluster keys', () => {
    const p = cnp('w', {
      endpointSelector: {},
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { 'cilium.io/cluster': 'us' } }],
          toPorts: [{ ports: [{ port: '80' }], rules: { http: [{ method: 'GET' }] } }],
        },
      ],
    });
    expect(issues(p)).toEqual([
      'warning spec.ingress[0].fromEndpoints[0].matchLabels["cilium.io/cluster"]: "cilium.io/cluster" looks like a cluster label; the cluster label is io.cilium.k8s.policy.cluster',
      'warning spec.ingress[0].toPorts[0].rules.http: L7 rules not enforced: the rule allows its peers and ports at L4',
    ]);
    expect(parsePolicy(p).ok).toBe(true);
  });

  it('Kubernetes NetworkPolicy rules', () => {
    const p = np('k', {
      podSelector: {},
      ingress: [
        {
          from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] }, podSelector: {} }],
          ports: [{ port: 'http', endPort: 90 }, { protocol: 'ANY' }],
        },
      ],
      policyTypes: ['Ingress', 'Sideways'],
    });
    expect(issues(p)).toEqual([
      'error spec.policyTypes[1]: must be Ingress or Egress, got "Sideways"',
      'error spec.ingress[0].from[0].ipBlock: may not be combined with podSelector or namespaceSelector',
      'error spec.ingress[0].ports[0].endPort: needs a numeric port, not a named one',
      'error spec.ingress[0].ports[1].protocol: must be TCP, UDP or SCTP, got "ANY"',
    ]);
    const except = np('e', {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['192.168.0.0/16'] } }] }],
    });
    expect(issues(except)).toEqual([
      'error spec.ingress[0].from[0].ipBlock.except[0]: 192.168.0.0/16 is not inside 10.0.0.0/8',
    ]);
  });

  it('specs lists, clusterwide nodeSelector, deny L7 and the audit annotation', () => {
    const list = cnp('l', [
      { endpointSelector: {}, ingress: [{}] },
      { ingressDeny: [{ toPorts: [{ ports: [{ port: '80' }], rules: { http: [{}] } }] }] },
    ]);
    expect(issues(list)).toEqual([
      'error specs[1]: endpointSelector is required',
      'error specs[1].ingressDeny[0].toPorts[0].rules: L7 rules are not allowed in deny rules',
    ]);
    expect(issues(ccnp('n', { nodeSelector: {}, ingress: [{}] }))).toEqual([
      'warning spec.nodeSelector: selects host endpoints, which meshplane does not manage: the rule selects no endpoint',
    ]);
    expect(
      issues(
        cnp('a', { endpointSelector: {} }, { annotations: { 'policy.meshplane.io/audit': 'yes' } }),
      ),
    ).toEqual([
      'error metadata.annotations["policy.meshplane.io/audit"]: must be "true" or "false", got "yes"',
    ]);
  });
});
