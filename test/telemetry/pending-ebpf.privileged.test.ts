// Pending and disconnected with real faults on the real kernel: a whole mesh
// (etcd, NATS, control plane, source, one agent with the eBPF datapath in its
// node namespace), pods as namespace hosts making real TCP connections. The
// agent is frozen with SIGSTOP while `meshctl apply` revokes an allow: skew
// shows the node pending since that revision's commit, with an age that grows,
// and real connections show the kernel still enforcing the old revision. After
// SIGCONT the node is in sync and the kernel enforces the new one; after
// SIGKILL it is disconnected and the kernel keeps enforcing what it last held
// (stopping is not removing). No test hooks: signals, the CLI and packets.
// ~90 s: the mesh starts once for the file and every meshctl call is its own process.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrivileged, waitFor } from '../harness/index.js';
// eslint-disable-next-line no-restricted-imports -- the datapath tests' mesh on test hosts, shared
import { cluster, namespace, pod, useLabMesh } from '../datapath/lab-mesh.js';
import { ROOT } from './procs.js';

const policy = (port: number): string => `apiVersion: cilium.io/v2
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
            - port: "${port}"
              protocol: TCP
`;

interface NodeJson {
  name: string;
  state: string;
  ackedRevision: number;
  syncedRevision: number;
  lagMs: number;
  since: string | null;
  error: string;
}
interface SkewJson {
  revision: number;
  clusters: { name: string; nodes: NodeJson[] }[];
  revisions: { revision: number; commitTime: string; ageMs: number; pending: number }[];
}

describe.skipIf(!requirePrivileged())(
  'a frozen or killed eBPF agent (signals, real traffic)',
  () => {
    const lab = useLabMesh(
      {
        eu: {
          'cluster.yaml': cluster('eu', 1, ['eu-1']),
          'ns.yaml': namespace('app'),
          'pods.yaml': [
            pod('client', 'app', 'eu-1', '10.1.0.10'),
            pod('server', 'app', 'eu-1', '10.1.0.20'),
          ].join('---\n'),
          'server-ingress.yaml': policy(80),
        },
      },
      [80, 8080].map((port) => ({ to: 'eu/app/server', port, protocol: 'TCP' as const })),
    );
    let work = '';
    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'meshplane-pending-'));
    });
    afterAll(async () => {
      if (work) await rm(work, { recursive: true, force: true });
    });

    const meshctl = (
      ...args: string[]
    ): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [join(ROOT, 'bin/meshctl.mjs'), ...args, '--state-dir', lab.mesh.stateDir],
          { timeout: 120_000, cwd: ROOT },
          (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const skew = async (): Promise<SkewJson> => {
      const r = await meshctl('skew', '--json');
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as SkewJson;
    };
    const eu1 = (s: SkewJson): NodeJson => s.clusters[0]!.nodes.find((n) => n.name === 'eu-1')!;
    const skewUntil = (what: string, pred: (s: SkewJson) => boolean): Promise<SkewJson> => {
      let last: SkewJson | undefined;
      return waitFor(
        what,
        async () => {
          last = await skew();
          return pred(last) && last;
        },
        { timeoutMs: 60_000, intervalMs: 250, detail: () => JSON.stringify(last) },
      );
    };
    const client = (port: number): Promise<string> =>
      lab.probe('eu/app/client', 'eu/app/server', port);

    it('SIGSTOP: pending with the age of the revision it misses, the kernel keeps the old revision; SIGCONT: the new one', async () => {
      expect(await client(80)).toBe('connected');
      expect(await client(8080)).toBe('timeout');
      const agent = lab.mesh.agent('eu', 'eu-1');
      process.kill(agent.pid, 'SIGSTOP');
      try {
        // Revoke the allow on 80, allow 8080 instead, as a user would.
        const file = join(work, 'server-ingress.yaml');
        await writeFile(file, policy(8080));
        const applied = await meshctl('apply', '-f', file, '--cluster', 'eu', '--json');
        expect(applied.code, applied.stderr).toBe(0);
        const revision = (JSON.parse(applied.stdout) as { revision: number }).revision;

        const first = await skewUntil('eu-1 pending', (s) => eu1(s).state === 'pending');
        const node = eu1(first);
        expect(node.syncedRevision).toBeLessThan(revision);
        // Its age runs from the commit of the oldest revision it has not synced.
        const missed = first.revisions.filter((r) => r.revision > node.syncedRevision).at(-1)!;
        expect(missed.revision).toBeLessThanOrEqual(first.revision);
        expect(node.since).toBe(missed.commitTime);
        expect(node.lagMs).toBe(missed.ageMs);
        expect(missed.pending).toBe(1);
        // ... and grows while the agent stays frozen.
        const later = await skewUntil(
          'eu-1 still pending, older',
          (s) => eu1(s).state === 'pending' && eu1(s).lagMs > node.lagMs + 1000,
        );
        expect(eu1(later).since).toBe(node.since);

        // Real connections: the kernel still enforces the revision before the change.
        expect(await client(80)).toBe('connected');
        expect(await client(8080)).toBe('timeout');
        const gate = await meshctl('wait', '--revision', String(revision), '--timeout', '1s');
        expect(gate.code, gate.stderr).toBe(1);
        expect(gate.stderr).toContain('eu/eu-1 (pending');
      } finally {
        process.kill(agent.pid, 'SIGCONT');
      }

      const s = await skewUntil('eu-1 in-sync', (x) => eu1(x).state === 'in-sync');
      expect(eu1(s)).toMatchObject({ lagMs: 0, syncedRevision: s.revision, error: '' });
      const waited = await meshctl('wait', '--revision', String(s.revision), '--timeout', '30s');
      expect(waited.code, waited.stderr).toBe(0);
      expect(await client(80)).toBe('timeout');
      expect(await client(8080)).toBe('connected');
    }, 180_000);

    it('SIGKILL: disconnected, and the kernel keeps enforcing what the agent last applied', async () => {
      const agent = lab.mesh.agent('eu', 'eu-1');
      process.kill(agent.pid, 'SIGKILL');
      await agent.exited;
      const s = await skewUntil('eu-1 disconnected', (x) => eu1(x).state === 'disconnected');
      expect(eu1(s).since).not.toBeNull();
      expect(eu1(s).syncedRevision).toBe(s.revision);
      const gate = await meshctl('skew', '--max-age', '1ms');
      expect(gate.code, gate.stderr).toBe(1);
      expect(gate.stderr).toMatch(/eu\/eu-1 \(disconnected for \d+ ms\)/);
      expect(await client(80)).toBe('timeout');
      expect(await client(8080)).toBe('connected');
    }, 120_000);
  },
);
