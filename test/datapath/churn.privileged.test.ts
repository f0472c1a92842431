// Enforcement while things change under live traffic: policy changes,
// revoked allows on established connections, and node agents SIGKILLed and
// restarted. ~70 s: one mesh for the file plus 8-10 s load windows.
import { describe, expect, it } from 'vitest';
import { requirePrivileged } from '../harness/index.js';
import { cluster, namespace, pod, useLabMesh } from './lab-mesh.js';

function serverPolicy(ports: number[]): string {
  return `apiVersion: cilium.io/v2
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
${ports.map((p) => `            - port: "${p}"\n              protocol: TCP`).join('\n')}
`;
}

describe.skipIf(!requirePrivileged())('eBPF enforcement under change', () => {
  const lab = useLabMesh(
    {
      c: {
        'cluster.yaml': cluster('c', 3, ['c-1', 'c-2']),
        'ns.yaml': namespace('app'),
        'pods.yaml': [
          pod('client', 'app', 'c-1', '10.3.0.10'),
          pod('denied', 'app', 'c-1', '10.3.0.11'),
          pod('server', 'app', 'c-2', '10.3.0.20'),
        ].join('---\n'),
        'policy.yaml': serverPolicy([80]),
      },
    },
    [80, 81].map((port) => ({ to: 'c/app/server', port, protocol: 'TCP' as const })),
  );
  const server = '10.3.0.20';

  it('fails no connection allowed before and after a policy change made while traffic flows', async () => {
    const client = lab.bed.host('c/app/client');
    const load = client.load(server, 80, 8000, 2, 2000);
    await new Promise((r) => setTimeout(r, 1000));
    await lab.writeManifest('c', 'policy.yaml', serverPolicy([80, 81]));
    expect(await lab.probe('c/app/client', 'c/app/server', 81)).toBe('connected');
    await lab.writeManifest('c', 'policy.yaml', serverPolicy([80]));
    const r = await load;
    expect(r.ok).toBeGreaterThan(0);
    expect({ timeout: r.timeout, refused: r.refused, other: r.other }).toEqual({
      timeout: 0,
      refused: 0,
      other: 0,
    });
    expect(await lab.probe('c/app/client', 'c/app/server', 81)).toBe('timeout');
  });

  it('stops new packets of an established connection once its allow is revoked', async () => {
    const client = lab.bed.host('c/app/client');
    expect(await client.hold('kept', server, 80, 2000)).toBe('connected');
    expect(await client.ping('kept', 2000)).toBe('ok');
    // A revision that keeps the allow: the flow's remembered verdict is judged again and stands.
    await lab.writeManifest('c', 'policy.yaml', serverPolicy([80, 81]));
    expect(await lab.probe('c/app/client', 'c/app/server', 81)).toBe('connected');
    expect(await client.ping('kept', 2000)).toBe('ok');
    // The next revision (the programs back on the copy they read when the flow started) revokes it.
    await lab.writeManifest('c', 'policy.yaml', serverPolicy([81]));
    expect(await client.ping('kept', 1500)).toBe('timeout');
    await client.drop('kept');
    await lab.writeManifest('c', 'policy.yaml', serverPolicy([80]));
    expect(await lab.probe('c/app/client', 'c/app/server', 80)).toBe('connected');
  });

  it('keeps enforcing through SIGKILL and restart of every agent: 0 failed allowed connections, denied stays denied', async () => {
    const client = lab.bed.host('c/app/client');
    const load = client.load(server, 80, 10_000, 2, 2000);
    const deniedOutcomes: string[] = [];
    let probing = true;
    const denied = (async () => {
      while (probing) deniedOutcomes.push(await lab.probe('c/app/denied', 'c/app/server', 80));
    })();
    await new Promise((r) => setTimeout(r, 1000));
    for (const node of ['c-1', 'c-2']) {
      const agent = lab.mesh.agent('c', node);
      process.kill(agent.pid, 'SIGKILL');
      await agent.exited;
    }
    // Both agents are gone now; the pinned maps and attached programs carry on.
    await new Promise((r) => setTimeout(r, 1500));
    await Promise.all(['c-1', 'c-2'].map((node) => lab.mesh.restartAgent('c', node)));
    const r = await load;
    probing = false;
    await denied;
    expect(r.ok).toBeGreaterThan(0);
    expect({ timeout: r.timeout, refused: r.refused, other: r.other }).toEqual({
      timeout: 0,
      refused: 0,
      other: 0,
    });
    expect(deniedOutcomes.length).toBeGreaterThan(0);
    expect(deniedOutcomes.filter((o) => o !== 'timeout')).toEqual([]);
  });
});
