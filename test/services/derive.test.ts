// ServiceExport -> ServiceImport derivation (Multi-Cluster Services API, KEP-1645). Pure.
import { describe, expect, it } from 'vitest';
import type { PodObject, ServiceExportObject, ServiceObject } from '../../common/index.js';
import { deriveServices, type ClusterObjects } from '../../controlplane/services/index.js';

const svc = (cluster: string, over: Partial<ServiceObject> = {}): ServiceObject => ({
  kind: 'Service',
  cluster,
  namespace: 'shop',
  name: 'cart',
  labels: {},
  type: 'ClusterIP',
  headless: false,
  selector: { app: 'cart' },
  ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' }],
  sessionAffinity: 'None',
  ...over,
});
const exp = (cluster: string, createdAt: string): ServiceExportObject => ({
  kind: 'ServiceExport',
  cluster,
  namespace: 'shop',
  name: 'cart',
  labels: {},
  creationTimestamp: createdAt,
});
const pod = (
  cluster: string,
  name: string,
  ip: string,
  over: Partial<PodObject> = {},
): PodObject => ({
  kind: 'Pod',
  cluster,
  namespace: 'shop',
  name,
  labels: { app: 'cart' },
  ips: [ip],
  node: `${cluster}-1`,
  serviceAccount: 'default',
  ports: [{ name: 'web', port: 8080, protocol: 'TCP' }],
  ready: true,
  hostNetwork: false,
  ...over,
});
function cluster(name: string, o: Partial<ClusterObjects> = {}): ClusterObjects {
  return {
    name,
    live: true,
    namespaces: new Set(['shop']),
    services: [],
    exports: [],
    pods: [],
    ...o,
  };
}
const ip = () => '100.64.0.1';

describe('deriveServices', () => {
  it('exports from one cluster: an import in every cluster with the namespace, ready endpoints with target ports resolved by name', () => {
    const { imports, exports } = deriveServices(
      [
        cluster('a', {
          services: [svc('a')],
          exports: [exp('a', '2026-01-01T00:00:00Z')],
          pods: [
            pod('a', 'p1', '10.1.0.1'),
            pod('a', 'p2', '10.1.0.2', { ready: false }),
            pod('a', 'p3', '10.1.0.3', { labels: { app: 'other' } }),
          ],
        }),
        cluster('b'),
        cluster('c', { namespaces: new Set(['elsewhere']) }),
      ],
      ip,
    );
    expect(imports).toHaveLength(1);
    expect(imports[0]).toMatchObject({
      namespace: 'shop',
      name: 'cart',
      type: 'ClusterSetIP',
      ips: ['100.64.0.1'],
      ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      clusters: ['a'],
      importedInto: ['a', 'b'],
      endpoints: [
        {
          cluster: 'a',
          addresses: ['10.1.0.1'],
          ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
          labels: {
            'multicluster.kubernetes.io/service-name': 'cart',
            'multicluster.kubernetes.io/source-cluster': 'a',
          },
        },
      ],
    });
    expect(exports[0]!.conditions).toContainEqual(
      expect.objectContaining({ type: 'Valid', status: 'True' }),
    );
  });

  it('exports from three clusters: the union of ports; a disagreeing port is served only where it matches; conflicts on every export involved', () => {
    const { imports, exports } = deriveServices(
      [
        cluster('a', {
          services: [svc('a')],
          exports: [exp('a', '2026-01-01T00:00:00Z')],
          pods: [pod('a', 'p', '10.1.0.1')],
        }),
        cluster('b', {
          services: [
            svc('b', {
              ports: [
                { name: 'http', port: 81, protocol: 'TCP', targetPort: 8080 },
                { name: 'admin', port: 9000, protocol: 'TCP', targetPort: 9000 },
              ],
            }),
          ],
          exports: [exp('b', '2026-02-01T00:00:00Z')],
          pods: [pod('b', 'p', '10.2.0.1')],
        }),
        cluster('c', {
          services: [svc('c', { headless: true })],
          exports: [exp('c', '2026-03-01T00:00:00Z')],
          pods: [pod('c', 'p', '10.3.0.1')],
        }),
      ],
      ip,
    );
    const i = imports[0]!;
    expect(i.type).toBe('ClusterSetIP'); // the oldest (a) decides
    expect(i.ports).toEqual([
      { name: 'admin', port: 9000, protocol: 'TCP' },
      { name: 'http', port: 80, protocol: 'TCP' },
    ]);
    const b = i.endpoints.find((e) => e.cluster === 'b')!;
    expect(b.ports.map((p) => p.name)).toEqual(['admin']); // b's http is 81: not served by b
    const cond = (c: string) =>
      exports.find((e) => e.cluster === c)!.conditions.find((x) => x.type === 'Conflict')!;
    expect(cond('b')).toMatchObject({ status: 'True', reason: 'PortConflict' });
    expect(cond('c')).toMatchObject({ status: 'True', reason: 'TypeConflict' });
    expect(cond('a')).toMatchObject({ status: 'True' });
    expect(cond('a').message).toContain('b, c');
  });

  it('oldest wins by creation time, ties broken by cluster name; a cleared conflict does not change the import', () => {
    const base = [
      cluster('b', {
        services: [svc('b', { headless: true })],
        exports: [exp('b', '2026-01-01T00:00:00Z')],
      }),
      cluster('a', { services: [svc('a')], exports: [exp('a', '2026-01-01T00:00:00Z')] }),
    ];
    expect(deriveServices(base, ip).imports[0]!.type).toBe('ClusterSetIP'); // a < b
    const cleared = [
      base[1]!,
      cluster('b', { services: [svc('b')], exports: [exp('b', '2026-01-01T00:00:00Z')] }),
    ];
    const before = deriveServices(base, ip).imports[0]!;
    const after = deriveServices(cleared, ip).imports[0]!;
    expect({ ...after, endpoints: [] }).toEqual({ ...before, endpoints: [] });
  });

  it('invalid exports: no Service, ExternalName; the import goes with the last valid export', () => {
    const r = deriveServices(
      [
        cluster('a', { exports: [exp('a', '2026-01-01T00:00:00Z')] }),
        cluster('b', {
          services: [svc('b', { type: 'ExternalName' })],
          exports: [exp('b', '2026-01-01T00:00:00Z')],
        }),
      ],
      ip,
    );
    expect(r.imports).toEqual([]);
    expect(r.exports.map((e) => e.conditions[0]!.reason)).toEqual([
      'NoService',
      'InvalidServiceType',
    ]);
  });

  it('a cluster silent beyond its lease loses its endpoints from the import', () => {
    const r = deriveServices(
      [
        cluster('a', {
          services: [svc('a')],
          exports: [exp('a', '2026-01-01T00:00:00Z')],
          pods: [pod('a', 'p', '10.1.0.1')],
        }),
        cluster('b', {
          live: false,
          services: [svc('b')],
          exports: [exp('b', '2026-02-01T00:00:00Z')],
          pods: [pod('b', 'p', '10.2.0.1')],
        }),
      ],
      ip,
    );
    expect(r.imports[0]!.endpoints.map((e) => e.cluster)).toEqual(['a']);
    expect(r.imports[0]!.clusters).toEqual(['a', 'b']);
  });

  it('headless imports get no clusterset IP', () => {
    const r = deriveServices(
      [
        cluster('a', {
          services: [svc('a', { headless: true })],
          exports: [exp('a', '2026-01-01T00:00:00Z')],
        }),
      ],
      ip,
    );
    expect(r.imports[0]).toMatchObject({ type: 'Headless', ips: [] });
  });
});
