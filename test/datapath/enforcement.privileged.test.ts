// Policy enforced by the eBPF datapath on real packets between namespace
// hosts: two clusters, agents in their node namespaces, policies written as
// manifest files. Takes ~60 s: the whole mesh starts once for the file.
import { describe, expect, it } from 'vitest';
import { requirePrivileged } from '../harness/index.js';
import { cluster, namespace, pod, useLabMesh } from './lab-mesh.js';

const SERVER_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: server-ingress
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
            - port: "80"
              protocol: TCP
            - port: "53"
              protocol: UDP
    - fromEndpoints:
        - matchLabels:
            app: client
            io.cilium.k8s.policy.cluster: us
      toPorts:
        - ports:
            - port: "8080"
              protocol: TCP
    - fromEndpoints:
        - {}
      toPorts:
        - ports:
            - port: "9000"
              protocol: TCP
  ingressDeny:
    - fromEndpoints:
        - matchLabels:
            app: intruder
      toPorts:
        - ports:
            - port: "9000"
              protocol: TCP
`;

// "other" may only reach the first world /24 on 443: everything else it sends is
// denied, but replies to connections made to it pass on conntrack.
const OTHER_EGRESS = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: other-egress
  namespace: app
spec:
  endpointSelector:
    matchLabels:
      app: other
  egress:
    - toCIDR:
        - 198.18.0.0/24
      toPorts:
        - ports:
            - port: "443"
              protocol: TCP
`;

// Would deny everything into us/server, but audits: traffic passes.
const US_AUDIT = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: audit-server
  namespace: app
  annotations:
    policy.meshplane.io/audit: "true"
spec:
  endpointSelector:
    matchLabels:
      app: server
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: nobody
`;

const privileged = requirePrivileged();

describe.skipIf(!privileged)('eBPF enforcement on real traffic', () => {
  const lab = useLabMesh(
    {
      eu: {
        'cluster.yaml': cluster('eu', 1, ['eu-1', 'eu-2']),
        'ns.yaml': namespace('app'),
        'pods.yaml': [
          pod('client', 'app', 'eu-1', '10.1.0.10'),
          pod('other', 'app', 'eu-1', '10.1.0.11'),
          pod('intruder', 'app', 'eu-2', '10.1.0.12'),
          pod('server', 'app', 'eu-2', '10.1.0.20'),
        ].join('---\n'),
        'server-ingress.yaml': SERVER_POLICY,
        'other-egress.yaml': OTHER_EGRESS,
      },
      us: {
        'cluster.yaml': cluster('us', 2, ['us-1']),
        'ns.yaml': namespace('app'),
        'pods.yaml': [
          pod('client', 'app', 'us-1', '10.2.0.10'),
          pod('server', 'app', 'us-1', '10.2.0.20'),
        ].join('---\n'),
        'audit.yaml': US_AUDIT,
      },
    },
    [
      ...[80, 8080, 9000].map((port) => ({ to: 'eu/app/server', port, protocol: 'TCP' as const })),
      { to: 'eu/app/server', port: 53, protocol: 'UDP' },
      { to: 'eu/app/other', port: 80, protocol: 'TCP' },
      { to: 'eu/app/client', port: 80, protocol: 'TCP' },
      { to: 'us/app/server', port: 80, protocol: 'TCP' },
      { to: '198.18.0.10', port: 443, protocol: 'TCP' },
      { to: '198.18.1.10', port: 443, protocol: 'TCP' },
    ],
  );

  it('allows by identity within the cluster and denies by default', async () => {
    expect(await lab.probe('eu/app/client', 'eu/app/server', 80)).toBe('connected');
    expect(await lab.probe('eu/app/other', 'eu/app/server', 80)).toBe('timeout');
    // Allowed identity, port not allowed.
    expect(await lab.probe('eu/app/client', 'eu/app/server', 8080)).toBe('timeout');
  });

  it('allows across clusters only what names the other cluster', async () => {
    expect(await lab.probe('us/app/client', 'eu/app/server', 8080)).toBe('connected');
    // The local-cluster rule for app=client does not match us's client.
    expect(await lab.probe('us/app/client', 'eu/app/server', 80)).toBe('timeout');
  });

  it('gives deny precedence over allow', async () => {
    expect(await lab.probe('eu/app/client', 'eu/app/server', 9000)).toBe('connected');
    expect(await lab.probe('eu/app/intruder', 'eu/app/server', 9000)).toBe('timeout');
  });

  it('enforces UDP', async () => {
    expect(await lab.probe('eu/app/client', 'eu/app/server', 53, 'UDP')).toBe('connected');
    expect(await lab.probe('eu/app/other', 'eu/app/server', 53, 'UDP')).toBe('timeout');
  });

  it('enforces CIDR egress to world hosts in 198.18.0.0/15', async () => {
    expect(await lab.probe('eu/app/other', '198.18.0.10', 443)).toBe('connected');
    expect(await lab.probe('eu/app/other', '198.18.1.10', 443)).toBe('timeout');
    // No egress policy on the client: the world is open to it.
    expect(await lab.probe('eu/app/client', '198.18.1.10', 443)).toBe('connected');
  });

  it('passes replies on conntrack where the policy would deny them as new traffic', async () => {
    // other's egress allows only the world, yet its SYN-ACKs to the client go out.
    expect(await lab.probe('eu/app/client', 'eu/app/other', 80)).toBe('connected');
    expect(await lab.probe('eu/app/other', 'eu/app/client', 80)).toBe('timeout');
  });

  it('passes traffic an audit-mode policy would deny', async () => {
    expect(await lab.probe('us/app/client', 'us/app/server', 80)).toBe('connected');
  });
});
