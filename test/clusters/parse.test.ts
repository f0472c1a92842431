import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseClusterDocuments, podPlacements } from '../../clusters/src/index.js';
import { namespaceYaml, placement, podYaml, spec } from './fixtures.js';

const cluster = spec('c', 1, ['c-1', 'c-2', 'c-3']);

function parse(files: Record<string, string>, clusterSpec = cluster) {
  const result = parseClusterDocuments(
    clusterSpec,
    Object.entries(files).map(([path, text]) => ({ path, text })),
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors, null, 2));
  return result;
}

describe('parseClusterDocuments: placement', () => {
  const files = {
    'ns.yaml': `${namespaceYaml('a')}---\n${namespaceYaml('b')}`,
    'b.yaml': [podYaml('b', 'p1'), podYaml('b', 'p0')].join('---\n'),
    'a.yaml': [
      podYaml('a', 'z'),
      podYaml('a', 'y', { status: '  podIP: 10.1.0.2\n' }),
      podYaml('a', 'x', { spec: '  nodeName: c-3\n' }),
      podYaml('a', 'w'),
    ].join('---\n'),
  };

  it('spreads pods without nodeName round-robin and numbers addresses in namespace/name order', () => {
    expect(placement(parse(files).value)).toEqual([
      'a/w c-1 10.1.0.1',
      'a/x c-3 10.1.0.3', // explicit node; 10.1.0.2 is taken explicitly by a/y
      'a/y c-2 10.1.0.2',
      'a/z c-3 10.1.0.4',
      'b/p0 c-1 10.1.0.5',
      'b/p1 c-2 10.1.0.6',
    ]);
  });

  it('does not depend on file order or names (property)', () => {
    const entries = Object.values(files);
    const expected = placement(parse(files).value);
    fc.assert(
      fc.property(fc.shuffledSubarray(entries, { minLength: entries.length }), (shuffled) => {
        const renamed = Object.fromEntries(shuffled.map((text, i) => [`f${i}.yaml`, text]));
        expect(placement(parse(renamed).value)).toEqual(expected);
      }),
      { numRuns: 30 },
    );
  });

  it('keeps the nodes and addresses of a previous load when pods come and go', () => {
    const first = parse(files).value;
    const previousPlacements = podPlacements(first);
    const edited = {
      ...files,
      // a/w is gone, a/a is new and sorts first: nobody else moves or is renumbered.
      'a.yaml': files['a.yaml'].replace('metadata:\n  name: w\n', 'metadata:\n  name: a\n'),
    };
    const result = parseClusterDocuments(
      cluster,
      Object.entries(edited).map(([path, text]) => ({ path, text })),
      { previousPlacements },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(placement(result.value)).toEqual([
      'a/a c-2 10.1.0.1', // lowest free address; round-robin goes on after the 4 kept pods (4 % 3)
      'a/x c-3 10.1.0.3',
      'a/y c-2 10.1.0.2',
      'a/z c-3 10.1.0.4',
      'b/p0 c-1 10.1.0.5',
      'b/p1 c-2 10.1.0.6',
    ]);
  });

  it('skips the network and broadcast addresses and any explicit address', () => {
    const small = spec('s', 9, ['s-1'], '192.168.7.0/30'); // hosts .1 and .2
    const result = parseClusterDocuments(small, [
      {
        path: 'p.yaml',
        text: [
          namespaceYaml('n'),
          podYaml('n', 'a'),
          podYaml('n', 'b', { status: '  podIP: 192.168.7.1\n' }),
          podYaml('n', 'c'),
        ].join('---\n'),
      },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      expect.objectContaining({
        object: 'Pod/n/c',
        field: 'status.podIP',
        message: 'no free address left in podCIDR 192.168.7.0/30 of cluster s',
      }),
    ]);
  });

  it('gives hostNetwork pods no pod IP, and takes podIPs, Ready=False and ports as written', () => {
    const result = parse({
      'n.yaml': namespaceYaml('n'),
      'p.yaml': [
        podYaml('n', 'host', { spec: '  hostNetwork: true\n  nodeName: c-2\n' }),
        podYaml('n', 'dual', {
          spec: [
            '  containers:',
            '    - name: a',
            '      ports: [{ containerPort: 53, protocol: UDP, name: dns }, { containerPort: 9090 }]',
            '',
          ].join('\n'),
          status: [
            '  podIP: 10.1.9.9',
            '  podIPs: [{ ip: 10.1.9.9 }, { ip: "fd00:0::9" }]',
            '  conditions: [{ type: Ready, status: "False" }]',
            '',
          ].join('\n'),
        }),
      ].join('---\n'),
    });
    const [dual, host] = result.value.filter((o) => o.kind === 'Pod');
    expect(host).toMatchObject({ ips: [], hostNetwork: true, node: 'c-2', ready: true });
    expect(dual).toMatchObject({
      ips: ['10.1.9.9', 'fd00::9'],
      ready: false,
      serviceAccount: 'default',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: '', port: 9090, protocol: 'TCP' },
      ],
    });
  });
});

describe('parseClusterDocuments: kinds', () => {
  it('converts services, exports, policies and v1 Lists; `default` namespace is implicit', () => {
    const result = parse({
      'all.yaml': [
        'apiVersion: v1\nkind: Service\nmetadata: { name: db }\nspec: { clusterIP: None, selector: { app: db } }\n',
        'apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  type: NodePort\n  sessionAffinity: ClientIP\n  ports: [{ name: a, port: 80 }, { name: b, port: 81, targetPort: 8081, protocol: UDP }]\n',
        'apiVersion: multicluster.x-k8s.io/v1beta1\nkind: ServiceExport\nmetadata: { name: web }\n',
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: deny }\nspec: { podSelector: {} }\n',
        'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: r }\nspecs: [{ endpointSelector: {} }]\n',
        'apiVersion: v1\nkind: List\nitems:\n  - { apiVersion: v1, kind: ServiceAccount, metadata: { name: sa } }\n',
      ].join('---\n'),
    });
    const byKey = new Map(result.value.map((o) => [`${o.kind}/${o.namespace}/${o.name}`, o]));
    expect([...byKey.keys()].sort()).toEqual([
      'CiliumNetworkPolicy/default/r',
      'Namespace//default',
      'NetworkPolicy/default/deny',
      'Service/default/db',
      'Service/default/web',
      'ServiceAccount/default/sa',
      'ServiceExport/default/web',
    ]);
    expect(byKey.get('Namespace//default')?.labels).toEqual({
      'kubernetes.io/metadata.name': 'default',
    });
    expect(byKey.get('Service/default/db')).toMatchObject({
      headless: true,
      ports: [],
      selector: { app: 'db' },
    });
    expect(byKey.get('Service/default/web')).toMatchObject({
      type: 'NodePort',
      selector: null,
      sessionAffinity: 'ClientIP',
      ports: [
        { name: 'a', port: 80, protocol: 'TCP', targetPort: 80 },
        { name: 'b', port: 81, protocol: 'UDP', targetPort: 8081 },
      ],
    });
    expect(byKey.get('CiliumNetworkPolicy/default/r')).toMatchObject({
      spec: [{ endpointSelector: {} }],
    });
    expect(byKey.get('NetworkPolicy/default/deny')).toMatchObject({ spec: { podSelector: {} } });
  });

  it('warns about what it accepts but cannot check', () => {
    const result = parse({
      'n.yaml': namespaceYaml('n'),
      'p.yaml': podYaml('n', 'p', { spec: '  serviceAccountName: ghost\n' }),
      'e.yaml':
        'apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceExport\nmetadata: { name: nope, namespace: n }\n',
    });
    expect(result.warnings.map((w) => [w.object, w.field])).toEqual([
      ['ServiceExport/n/nope', 'metadata.name'],
      ['Pod/n/p', 'spec.serviceAccountName'],
    ]);
  });
});
