import { describe, expect, it } from 'vitest';
import type { MeshObject, PolicyObject, ServiceObject } from '../../common/index.js';
import { loadMeshFolder } from '../../clusters/src/index.js';
import { placement } from './fixtures.js';

describe('the demo mesh (clusters/demo)', () => {
  it('loads with the pods, nodes and addresses the scenario needs', async () => {
    const result = await loadMeshFolder('clusters/demo');
    if (!result.ok) throw new Error(JSON.stringify(result.errors, null, 2));
    expect(result.warnings).toEqual([]);
    expect(result.value.multiCluster).toBe(true);
    const [eu, us] = result.value.clusters;
    expect(eu?.spec).toEqual({
      name: 'eu',
      id: 1,
      nodes: ['eu-1', 'eu-2'],
      podCIDR: '10.1.0.0/16',
    });
    expect(us?.spec).toEqual({
      name: 'us',
      id: 2,
      nodes: ['us-1', 'us-2'],
      podCIDR: '10.2.0.0/16',
    });
    // Addresses are handed out in namespace/name order from each cluster's podCIDR.
    expect(placement(eu!.objects)).toEqual([
      'billing/transactions-7c9d5b8f4-m8wzt eu-2 10.1.0.1',
      'billing/transactions-7c9d5b8f4-x2kqv eu-1 10.1.0.2',
      'production/billing-service-5b8d7f9c6-t4vxk eu-1 10.1.0.3',
      'production/billing-service-5b8d7f9c6-w9npd eu-2 10.1.0.4',
      'production/frontend-6f4b9c7d8-h5pjr eu-1 10.1.0.5',
      'production/frontend-6f4b9c7d8-q7lzn eu-2 10.1.0.6',
      'production/legacy-service-84d6c5b9f-zr7mc eu-2 10.1.0.7',
    ]);
    expect(placement(us!.objects)).toEqual([
      'risk/fraud-detection-9f7c6d5b4-k8dnw us-1 10.2.0.1',
      'risk/fraud-detection-9f7c6d5b4-s2hxq us-2 10.2.0.2',
    ]);
  });

  it('keeps what identities, services and policies are computed from', async () => {
    const result = await loadMeshFolder('clusters/demo');
    if (!result.ok) throw new Error('demo is invalid');
    const [eu, us] = result.value.clusters;
    const find = (objects: readonly MeshObject[], key: string): unknown =>
      objects.find((o) => `${o.kind}/${o.namespace}/${o.name}` === key);

    expect(find(eu!.objects, 'Pod/billing/transactions-7c9d5b8f4-x2kqv')).toMatchObject({
      cluster: 'eu',
      labels: { app: 'transactions', 'pod-template-hash': '7c9d5b8f4' },
      serviceAccount: 'transactions-sa',
      ready: true,
      hostNetwork: false,
    });
    expect(find(eu!.objects, 'Namespace//billing')).toMatchObject({
      labels: { team: 'payments', 'kubernetes.io/metadata.name': 'billing' },
    });
    expect(find(eu!.objects, 'ServiceAccount/billing/transactions-sa')).toBeDefined();
    expect(find(eu!.objects, 'Pod/production/billing-service-5b8d7f9c6-t4vxk')).toMatchObject({
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    expect(find(eu!.objects, 'Service/production/billing-service') as ServiceObject).toMatchObject({
      type: 'ClusterIP',
      headless: false,
      selector: { app: 'billing-service' },
      ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 'http' }],
      sessionAffinity: 'None',
    });
    const cnp = find(eu!.objects, 'CiliumNetworkPolicy/production/frontend-to-billing-service');
    expect((cnp as PolicyObject).spec).toMatchObject({
      endpointSelector: { matchLabels: { app: 'billing-service' } },
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'frontend' } }] }],
    });

    expect(find(us!.objects, 'Pod/risk/fraud-detection-9f7c6d5b4-k8dnw')).toMatchObject({
      ports: [{ name: 'grpc', port: 50051, protocol: 'TCP' }],
    });
    expect(find(us!.objects, 'ServiceExport/risk/fraud-detection')).toBeDefined();
    const ccnp = find(
      us!.objects,
      'CiliumClusterwideNetworkPolicy//allow-eu-transactions-to-fraud-detection',
    );
    expect((ccnp as PolicyObject).namespace).toBe('');
    expect((ccnp as PolicyObject).spec).toEqual({
      endpointSelector: {
        matchLabels: { app: 'fraud-detection', 'k8s:io.kubernetes.pod.namespace': 'risk' },
      },
      ingress: [
        {
          fromEndpoints: [
            {
              matchLabels: {
                app: 'transactions',
                'k8s:io.kubernetes.pod.namespace': 'billing',
                'io.cilium.k8s.policy.cluster': 'eu',
              },
            },
          ],
          toPorts: [{ ports: [{ port: '50051', protocol: 'TCP' }] }],
        },
      ],
    });
  });

  it('--nodes replaces the node lists; pods on nodes that no longer exist are re-placed', async () => {
    const three = await loadMeshFolder('clusters/demo', { nodesPerCluster: 3 });
    if (!three.ok) throw new Error(JSON.stringify(three.errors));
    expect(three.value.clusters.map((c) => c.spec.nodes)).toEqual([
      ['eu-1', 'eu-2', 'eu-3'],
      ['us-1', 'us-2', 'us-3'],
    ]);
    const one = await loadMeshFolder('clusters/demo', { nodesPerCluster: 1 });
    if (!one.ok) throw new Error(JSON.stringify(one.errors));
    expect(new Set(placement(one.value.clusters[0]!.objects).map((p) => p.split(' ')[1]))).toEqual(
      new Set(['eu-1']),
    );
    expect(one.warnings).toHaveLength(5); // the pods on eu-2 and us-2
    expect(one.warnings[0]).toMatchObject({ field: 'spec.nodeName', severity: 'warning' });
  });
});
