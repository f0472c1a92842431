// The test hosts on the real kernel, with no datapath program anywhere:
// every served port connects, an unserved one is refused, and a run leaves
// no namespace behind — also when its process is killed by a signal.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestbed,
  listRunNamespaces,
  newRunId,
  type Testbed,
  type TestbedSpec,
} from '../../hosts/index.js';
import { requirePrivileged, waitFor } from '../harness/index.js';

const privileged = requirePrivileged();

function twoClusterSpec(runId: string): TestbedSpec {
  return {
    runId,
    nodes: [
      { cluster: 'eu', name: 'eu-1' },
      { cluster: 'eu', name: 'eu-2' },
      { cluster: 'us', name: 'us-1' },
    ],
    pods: [
      {
        cluster: 'eu',
        namespace: 'a',
        name: 'p1',
        node: 'eu-1',
        ip: '10.1.0.1',
        tcp: [80],
        udp: [53],
      },
      {
        cluster: 'eu',
        namespace: 'a',
        name: 'p2',
        node: 'eu-1',
        ip: '10.1.0.2',
        tcp: [80, 8080],
        udp: [],
      },
      {
        cluster: 'eu',
        namespace: 'b',
        name: 'p3',
        node: 'eu-2',
        ip: '10.1.1.3',
        tcp: [80],
        udp: [],
      },
      {
        cluster: 'us',
        namespace: 'c',
        name: 'q1',
        node: 'us-1',
        ip: '10.2.0.1',
        tcp: [80],
        udp: [53],
      },
    ],
    world: [{ ip: '198.18.0.10', tcp: [443], udp: [] }],
    podCidrs: ['10.1.0.0/16', '10.2.0.0/16'],
  };
}

describe.skipIf(!privileged)('test hosts without any datapath program', () => {
  let bed: Testbed;
  beforeAll(async () => {
    bed = await createTestbed(twoClusterSpec(newRunId()));
  });
  afterAll(async () => {
    await bed?.destroy();
  });

  it('connects every pair on every served port: same node, across nodes, across clusters, to the world', async () => {
    const cases = [
      ['eu/a/p1', 'eu/a/p2', 80, 'TCP'],
      ['eu/a/p1', 'eu/a/p2', 8080, 'TCP'],
      ['eu/a/p1', 'eu/b/p3', 80, 'TCP'],
      ['eu/b/p3', 'us/c/q1', 80, 'TCP'],
      ['us/c/q1', 'eu/a/p1', 53, 'UDP'],
      ['eu/a/p2', '198.18.0.10', 443, 'TCP'],
      ['198.18.0.10', 'eu/a/p1', 80, 'TCP'],
    ] as const;
    const seen = await Promise.all(
      cases.map(async ([from, to, port, proto]) => {
        const r = await bed.probe(from, to, port, proto, 2000);
        return `${from} → ${to}:${port}/${proto} ${r.outcome}`;
      }),
    );
    expect(seen).toEqual(
      cases.map(([from, to, port, proto]) => `${from} → ${to}:${port}/${proto} connected`),
    );
  });

  it('tells refused from connected, and an address nobody holds is unreachable, not leaked', async () => {
    expect((await bed.probe('eu/a/p1', 'us/c/q1', 81, 'TCP', 2000)).outcome).toBe('refused');
    expect((await bed.probe('eu/a/p1', 'us/c/q1', 54, 'UDP', 2000)).outcome).toBe('refused');
    expect((await bed.probe('eu/a/p1', '10.1.200.1', 80, 'TCP', 2000)).outcome).toBe('unreachable');
    expect((await bed.probe('eu/a/p1', '198.19.0.1', 80, 'TCP', 2000)).outcome).toBe('unreachable');
  });

  it('keeps a held connection answering, and runs short connections under load', async () => {
    const host = bed.host('eu/b/p3');
    expect(await host.hold('h1', bed.pod('us/c/q1').ip, 80, 2000)).toBe('connected');
    expect(await host.ping('h1', 2000)).toBe('ok');
    await host.drop('h1');
    expect(await host.ping('h1', 2000)).toBe('closed');
    const load = await host.load(bed.pod('eu/a/p1').ip, 80, 500, 2, 2000);
    expect(load).toMatchObject({ timeout: 0, refused: 0, other: 0 });
    expect(load.ok).toBeGreaterThan(0);
  });

  it('puts each pod behind its node: the host-side veth is in the node namespace', () => {
    const p = bed.pod('eu/a/p2');
    expect(p).toMatchObject({ nodeNetns: bed.node('eu', 'eu-1').netns, hostIfname: 'lxc1' });
  });
});

describe.skipIf(!privileged)('test host cleanup', () => {
  it('destroy() removes every namespace of the run', async () => {
    const bed = await createTestbed(twoClusterSpec(newRunId()));
    expect(await listRunNamespaces(bed.plan.prefix)).toHaveLength(bed.plan.namespaces.length);
    await bed.destroy();
    expect(await listRunNamespaces(bed.plan.prefix)).toEqual([]);
  });

  it('a process that dies of SIGTERM (or SIGINT) mid-run removes its namespaces on the way out', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const runId = newRunId();
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(new URL('./hold-testbed.fixture.ts', import.meta.url)),
          runId,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.once('exit', (code) =>
          reject(new Error(`fixture exited ${String(code)} before ready`)),
        );
      });
      expect((await listRunNamespaces(`mp-${runId}-`)).length).toBeGreaterThan(0);
      child.kill(signal);
      await new Promise((r) => child.once('exit', r));
      await waitFor(`namespaces of run ${runId} gone after ${signal}`, async () =>
        (await listRunNamespaces(`mp-${runId}-`)).length === 0 ? true : undefined,
      );
    }
  });
});
