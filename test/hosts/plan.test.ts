import { describe, expect, it } from 'vitest';
import { planTestbed, testbedSpecOf, type TestbedSpec } from '../../hosts/index.js';
import { loadMeshFolder } from '../../clusters/src/index.js';

const spec: TestbedSpec = {
  runId: 'abc123',
  nodes: [
    { cluster: 'eu', name: 'eu-1' },
    { cluster: 'us', name: 'us-1' },
  ],
  pods: [
    { cluster: 'eu', namespace: 'a', name: 'x', node: 'eu-1', ip: '10.1.0.5', tcp: [80], udp: [] },
    { cluster: 'us', namespace: 'b', name: 'y', node: 'us-1', ip: '10.2.0.7', tcp: [], udp: [53] },
  ],
  world: [{ ip: '198.18.0.10', tcp: [443], udp: [] }],
  podCidrs: ['10.1.0.0/16', '10.2.0.0/16'],
};

describe('planTestbed', () => {
  it('names every namespace with the run id and routes pods through their node and the fabric', () => {
    const plan = planTestbed(spec);
    expect(plan.namespaces).toEqual([
      'mp-abc123-fabric',
      'mp-abc123-eu.eu-1',
      'mp-abc123-us.us-1',
      'mp-abc123-eu.a.x',
      'mp-abc123-us.b.y',
      'mp-abc123-world0',
    ]);
    const fabric = plan.steps.find((s) => s.netns === 'mp-abc123-fabric')!.lines;
    expect(fabric).toContain('route add 10.1.0.5/32 via 169.254.0.2 dev n0');
    expect(fabric).toContain('route add 10.2.0.7/32 via 169.254.0.6 dev n1');
    expect(fabric).toContain('route add 198.18.0.10/32 dev w0');
    // Nothing of the run's ranges can leave: what nobody holds is unreachable.
    expect(fabric).toEqual(
      expect.arrayContaining([
        'route add unreachable 10.1.0.0/16',
        'route add unreachable 10.2.0.0/16',
        'route add unreachable 198.18.0.0/15',
      ]),
    );
    const node = plan.steps.find((s) => s.netns === 'mp-abc123-eu.eu-1')!.lines;
    expect(node).toContain('link add lxc0 type veth peer name eth0 netns mp-abc123-eu.a.x');
    expect(node).toContain('route add 10.1.0.5/32 dev lxc0');
    expect(plan.pods[0]).toMatchObject({ hostIfname: 'lxc0', nodeNetns: 'mp-abc123-eu.eu-1' });
    // Forwarding is switched on in the run's routers only, never in pods.
    expect(plan.sysctls.map((s) => s.netns)).toEqual([
      'mp-abc123-fabric',
      'mp-abc123-eu.eu-1',
      'mp-abc123-us.us-1',
    ]);
  });

  it('refuses what it cannot build, naming it', () => {
    expect(() => planTestbed({ ...spec, runId: 'Bad/Id' })).toThrow(/run id/);
    expect(() =>
      planTestbed({ ...spec, world: [{ ip: '203.0.113.1', tcp: [], udp: [] }] }),
    ).toThrow(/203\.0\.113\.1 is not in 198\.18\.0\.0\/15/);
    expect(() =>
      planTestbed({ ...spec, pods: [spec.pods[0]!, { ...spec.pods[1]!, ip: '10.1.0.5' }] }),
    ).toThrow(/pod us\/b\/y: address 10\.1\.0\.5 is used twice/);
    expect(() => planTestbed({ ...spec, pods: [{ ...spec.pods[0]!, node: 'eu-9' }] })).toThrow(
      /node eu-9 is not in the run/,
    );
  });
});

describe('testbedSpecOf', () => {
  it('gives the demo every node and pod, and a world peer per probed world address', async () => {
    const loaded = await loadMeshFolder('clusters/demo');
    if (!loaded.ok) throw new Error('demo does not load');
    const s = testbedSpecOf('r1', loaded.value.clusters, [
      { to: 'us/risk/fraud-detection-9f7c6d5b4-k8dnw', port: 50051, protocol: 'TCP' },
      { to: 'us/risk/fraud-detection-9f7c6d5b4-k8dnw', port: 53, protocol: 'UDP' },
      { to: '198.18.0.10', port: 443, protocol: 'TCP' },
      { to: '198.18.0.10', port: 9, protocol: 'SCTP' },
    ]);
    expect(s.nodes).toHaveLength(4);
    expect(s.podCidrs).toEqual(['10.1.0.0/16', '10.2.0.0/16']);
    const fraud = s.pods.find((p) => p.name === 'fraud-detection-9f7c6d5b4-k8dnw')!;
    expect(fraud.tcp).toContain(50051);
    expect(fraud.udp).toEqual([53]);
    expect(s.world).toEqual([{ ip: '198.18.0.10', tcp: [443], udp: [] }]);
    expect(() =>
      testbedSpecOf('r1', loaded.value.clusters, [{ to: '8.8.8.8', port: 53, protocol: 'UDP' }]),
    ).toThrow(/8\.8\.8\.8: not a pod/);
  });
});
