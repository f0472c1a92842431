// Port ranges (endPort) enforced by the eBPF datapath on real packets between
// namespace hosts: a CiliumNetworkPolicy with TCP and UDP ranges for one peer
// identity and a deny range over an allowed single port, and a Kubernetes
// NetworkPolicy whose range applies to every peer (the any-identity level).
// The ends of each range and the ports just outside are probed. Takes ~30 s:
// the whole mesh starts once for the file.
import { describe, expect, it } from 'vitest';
import { requirePrivileged } from '../harness/index.js';
import { cluster, namespace, pod, useLabMesh } from './lab-mesh.js';

const rangesFor = (high: number): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ranges
  namespace: app
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: client
      toPorts:
        - ports:
            - port: "8000"
              endPort: ${high}
              protocol: TCP
            - port: "9005"
              protocol: TCP
            - port: "5300"
              endPort: 5310
              protocol: UDP
  ingressDeny:
    - fromEndpoints:
        - matchLabels:
            app: client
      toPorts:
        - ports:
            - port: "9000"
              endPort: 9010
              protocol: TCP
`;

// No "from": the range holds for every peer (identity 0 in the policy map).
const ANY_PEER_RANGE = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: server-any-peer
  namespace: app
spec:
  podSelector:
    matchLabels:
      app: server
  policyTypes: [Ingress]
  ingress:
    - ports:
        - protocol: TCP
          port: 7000
          endPort: 7010
`;

const SERVER = 'eu/app/server';
const TCP_PORTS = [6999, 7000, 7005, 7010, 7011, 7999, 8000, 8004, 8005, 8010, 8011, 9005];
const UDP_PORTS = [5299, 5305, 5311];

describe.skipIf(!requirePrivileged())('eBPF enforcement of port ranges on real traffic', () => {
  const lab = useLabMesh(
    {
      eu: {
        'cluster.yaml': cluster('eu', 1, ['eu-1', 'eu-2']),
        'ns.yaml': namespace('app'),
        'pods.yaml': [
          pod('client', 'app', 'eu-1', '10.1.0.10'),
          pod('other', 'app', 'eu-1', '10.1.0.11'),
          pod('server', 'app', 'eu-2', '10.1.0.20'),
        ].join('---\n'),
        'server-ranges.yaml': rangesFor(8010),
        'server-any-peer.yaml': ANY_PEER_RANGE,
      },
    },
    [
      ...TCP_PORTS.map((port) => ({ to: SERVER, port, protocol: 'TCP' as const })),
      ...UDP_PORTS.map((port) => ({ to: SERVER, port, protocol: 'UDP' as const })),
    ],
  );
  const probe = (from: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP') =>
    lab.probe(`eu/app/${from}`, SERVER, port, protocol);

  it('allows a TCP range for one identity at both ends and inside, and denies just outside', async () => {
    expect(await probe('client', 8000)).toBe('connected');
    expect(await probe('client', 8005)).toBe('connected');
    expect(await probe('client', 8010)).toBe('connected');
    expect(await probe('client', 7999)).toBe('timeout');
    expect(await probe('client', 8011)).toBe('timeout');
    // Another identity is not in the rule.
    expect(await probe('other', 8005)).toBe('timeout');
  });

  it('denies a port an allowed single port and a deny range both hold', async () => {
    expect(await probe('client', 9005)).toBe('timeout');
  });

  it('allows a range for every peer (any identity) from a NetworkPolicy with endPort', async () => {
    for (const from of ['client', 'other']) {
      expect(await probe(from, 7000)).toBe('connected');
      expect(await probe(from, 7010)).toBe('connected');
      expect(await probe(from, 6999)).toBe('timeout');
      expect(await probe(from, 7011)).toBe('timeout');
    }
  });

  it('enforces a UDP range', async () => {
    expect(await probe('client', 5305, 'UDP')).toBe('connected');
    expect(await probe('client', 5299, 'UDP')).toBe('timeout');
    expect(await probe('client', 5311, 'UDP')).toBe('timeout');
    expect(await probe('other', 5305, 'UDP')).toBe('timeout');
  });

  it('narrows a range when the policy changes', async () => {
    await lab.writeManifest('eu', 'server-ranges.yaml', rangesFor(8004));
    expect(await probe('client', 8004)).toBe('connected');
    expect(await probe('client', 8005)).toBe('timeout');
    expect(await probe('client', 8010)).toBe('timeout');
    // The rest of the policy is unchanged.
    expect(await probe('client', 5305, 'UDP')).toBe('connected');
    expect(await probe('client', 9005)).toBe('timeout');
  });
});
