// Skew with real faults against the real binaries: a control plane process,
// node agents as processes, meshctl as a process. SIGSTOP → pending with the
// age of the revision it misses (and in-sync after SIGCONT); SIGKILL →
// disconnected; a datapath too small → nacked with its error; an agent
// reporting a digest other than what it was sent → diverged. `skew
// --max-age` and `wait --revision` exit codes follow. A raw discovery client
// stands in for the diverged node: the emulated datapath cannot be written
// from outside the agent.
// ~90 s: every meshctl call is its own process (tsx start-up takes seconds on this shared
// 2-core machine), and the pending state is held until its lag exceeds the gate.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshAdminClient } from '../../proto/index.js';
// eslint-disable-next-line no-restricted-imports -- the control plane tests' raw discovery client, shared
import { RawAgent } from '../controlplane/raw-agent.js';
import { useInfra, waitFor } from '../harness/index.js';
import { connect, pod, publish, ROOT, startProc, stopProc, type Proc } from './procs.js';

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
  commitTime: string;
  clusters: { name: string; nodes: NodeJson[] }[];
  revisions: {
    revision: number;
    commitTime: string;
    pending: number;
    acks: number;
    convergedAt: string | null;
  }[];
}

describe('skew and wait with real faults (processes)', () => {
  const infra = useInfra();
  let cp: Proc;
  let address = '';
  let nc: NatsConnection;
  let stateDir = '';
  const agents = new Map<string, Proc>();
  let raw: RawAgent | undefined;
  let rawLies = false;

  const meshctl = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [join(ROOT, 'bin/meshctl.mjs'), ...args, '--server', address, '--state-dir', stateDir],
        { timeout: 120_000 },
        (err, stdout, stderr) =>
          resolve({
            code: err ? ((err as { code?: number }).code ?? 1) : 0,
            stdout,
            stderr,
          }),
      );
    });
  const skew = async (): Promise<SkewJson> => {
    const r = await meshctl('skew', '--json');
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as SkewJson;
  };
  const nodeOf = (s: SkewJson, n: string): NodeJson =>
    s.clusters.find((c) => c.name === 'eu')!.nodes.find((x) => x.name === n)!;
  const skewUntil = (what: string, pred: (s: SkewJson) => boolean): Promise<SkewJson> => {
    let last: SkewJson | undefined;
    return waitFor(
      what,
      async () => {
        last = await skew();
        return pred(last) && last;
      },
      { timeoutMs: 60_000, intervalMs: 200, detail: () => JSON.stringify(last?.clusters) },
    );
  };
  const startAgent = (node: string, extra: string[] = []): void => {
    agents.set(
      node,
      startProc('nodeagent/main.ts', [
        '--insecure',
        '--server',
        address,
        '--cluster',
        'eu',
        '--node',
        node,
        ...extra,
      ]),
    );
  };

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'meshplane-skew-'));
    cp = startProc('controlplane/main.ts', [
      '--etcd',
      infra.etcd.endpoint,
      '--nats',
      infra.nats.url,
      '--insecure',
    ]);
    address = String((await cp.ready).address);
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    nc = await connect({ servers: infra.nats.url });
    await publish(nc, [
      { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
      pod('web-1', 'eu-1'),
      pod('api-1', 'eu-2'),
      pod('db-1', 'eu-3'),
    ]);
    startAgent('eu-1');
    startAgent('eu-2');
    startAgent('eu-3');
    // eu-4 holds no pod yet, so its one-endpoint datapath fits until the NACK test.
    startAgent('eu-4', ['--capacity-endpoints', '1']);
    // eu-5: a discovery client that ACKs every revision, honestly until told to lie.
    raw = new RawAgent(address, 'eu', 'eu-5');
    void (async () => {
      for (;;) {
        const parts = await raw.nextRevision().catch(() => undefined);
        if (!parts) return;
        raw.ack(parts, rawLies ? 'ffffffffffffffff' : raw.digest());
      }
    })();
    await Promise.all([...agents.values()].map((a) => a.ready));
  }, 240_000);
  afterAll(async () => {
    raw?.close();
    for (const a of agents.values()) await stopProc(a);
    await stopProc(cp);
    await nc?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('all in sync: skew --max-age passes, wait for the latest revision returns at once', async () => {
    const s = await skewUntil('every node in-sync', (x) =>
      x.clusters[0]!.nodes.every((n) => n.state === 'in-sync' && n.syncedRevision === x.revision),
    );
    expect(s.clusters[0]!.nodes.map((n) => n.name)).toEqual([
      'eu-1',
      'eu-2',
      'eu-3',
      'eu-4',
      'eu-5',
    ]);
    expect((await meshctl('skew', '--max-age', '30s')).code).toBe(0);
    const w = await meshctl('wait', '--revision', String(s.revision), '--timeout', '30s', '--json');
    expect(w.code, w.stderr).toBe(0);
    expect(JSON.parse(w.stdout)).toMatchObject({
      apiVersion: 'meshplane/v1',
      synced: true,
      laggards: [],
    });
  });

  it('SIGSTOP: pending since the commit of the revision it misses; gates fail naming it; SIGCONT: in-sync', async () => {
    const proc = agents.get('eu-1')!;
    proc.child.kill('SIGSTOP');
    await publish(nc, [pod('web-2', 'eu-1')]);
    const s = await skewUntil(
      'eu-1 pending for over 500 ms while eu-2 is synced at the latest revision',
      (x) =>
        nodeOf(x, 'eu-1').state === 'pending' &&
        nodeOf(x, 'eu-1').lagMs > 500 &&
        nodeOf(x, 'eu-2').syncedRevision === x.revision,
    );
    const eu1 = nodeOf(s, 'eu-1');
    // Its age is counted from the commit of the oldest revision it has not synced.
    const missed = s.revisions.filter((r) => r.revision > eu1.syncedRevision).at(-1)!;
    expect(eu1.since).toBe(missed.commitTime);
    expect(missed.pending).toBeGreaterThanOrEqual(1);

    const gate = await meshctl('skew', '--max-age', '200ms');
    expect(gate.code).toBe(1);
    expect(gate.stderr).toMatch(/eu\/eu-1 \(pending for \d+ ms/);
    const w = await meshctl('wait', '--revision', String(s.revision), '--timeout', '1s');
    expect(w.code).toBe(1);
    expect(w.stderr).toContain('eu/eu-1 (pending');
    expect(w.stderr).not.toContain('eu/eu-2');

    proc.child.kill('SIGCONT');
    const w2 = await meshctl('wait', '--revision', String(s.revision), '--timeout', '60s');
    expect(w2.code, w2.stderr).toBe(0);
    const after = await skew();
    expect(nodeOf(after, 'eu-1')).toMatchObject({ state: 'in-sync', lagMs: 0 });
    const r = after.revisions.find((x) => x.revision === missed.revision)!;
    expect(r).toMatchObject({ pending: 0 });
    expect(r.acks).toBeGreaterThanOrEqual(1);
    expect(r.convergedAt).not.toBeNull();
  });

  it('SIGKILL: disconnected since the stream closed; the gate fails once that is older than --max-age', async () => {
    const eu2 = agents.get('eu-2')!;
    eu2.child.kill('SIGKILL');
    await eu2.exited;
    const s = await skewUntil(
      'eu-2 disconnected',
      (x) => nodeOf(x, 'eu-2').state === 'disconnected',
    );
    expect(nodeOf(s, 'eu-2').since).not.toBeNull();
    expect(nodeOf(s, 'eu-2').syncedRevision).toBe(s.revision);
    expect((await meshctl('skew', '--max-age', '1h')).code).toBe(0);
    const gate = await meshctl('skew', '--max-age', '1ms');
    expect(gate.code).toBe(1);
    expect(gate.stderr).toMatch(/eu\/eu-2 \(disconnected for \d+ ms\)/);
  });

  it('a datapath too small: nacked with its error, kept on its last good revision', async () => {
    const before = nodeOf(await skew(), 'eu-4');
    await publish(nc, [pod('cache-1', 'eu-4'), pod('cache-2', 'eu-4')]);
    const s = await skewUntil('eu-4 nacked', (x) => nodeOf(x, 'eu-4').state === 'nacked');
    const eu4 = nodeOf(s, 'eu-4');
    expect(eu4.error).toMatch(/^revision \d+ rejected: .*endpoint/i);
    expect(eu4.ackedRevision).toBe(before.ackedRevision);
    const gate = await meshctl('skew', '--max-age', '1h');
    expect(gate.code).toBe(1);
    expect(gate.stderr).toMatch(/eu\/eu-4 \(nacked: revision \d+ rejected/);
  });

  it('an agent reporting a digest other than what it was sent is diverged', async () => {
    rawLies = true;
    await publish(nc, [pod('queue-1', 'eu-5')]);
    const s = await skewUntil('eu-5 diverged', (x) => nodeOf(x, 'eu-5').state === 'diverged');
    expect(nodeOf(s, 'eu-5').error).toMatch(
      /^datapath digest ffffffffffffffff differs from expected [0-9a-f]{16}$/,
    );
    const gate = await meshctl('skew', '--max-age', '1h');
    expect(gate.code).toBe(1);
    expect(gate.stderr).toContain('eu/eu-5 (diverged');
  });

  it('usage errors exit 2', async () => {
    expect((await meshctl('skew', '--max-age', 'soon')).code).toBe(2);
    expect((await meshctl('wait', '--revision', 'latest')).code).toBe(2);
  });
});
