// End to end, as a user runs it: `meshctl up` on a copy of the demo mesh
// starts real etcd and NATS, the control plane, both cluster sources and 4
// node agents, each its own process, talking real gRPC and NATS. The test
// drives it the way a user does — editing manifest files — and reads state
// through the admin API and `meshctl status --json`.
// Slow-ish (~15 s): it starts 8 processes and waits for real propagation.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { cp, readFile, writeFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { connect } from 'nats';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTransport, meshTlsLayout, readTlsMaterial } from '../../common/tls/index.js';
import { MeshAdminClient, StatusRequest, type StatusResponse } from '../../proto/index.js';
import { tempDir, type TempDir } from '../harness/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

const NEW_POD = (ports: string) => `apiVersion: v1
kind: Pod
metadata:
  name: reporting-7d9f8-abcde
  namespace: production
  labels:
    app: reporting
spec:
  nodeName: eu-2
  containers:
    - name: reporting
      image: registry.example.com/web/reporting:1.0.0
${ports}`;

describe('the demo mesh under meshctl up', () => {
  let work: TempDir;
  let mesh: string;
  let stateDir: string;
  let up: ChildProcess;
  let upExit: Promise<number | null>;
  let admin: MeshAdminClient;
  let stderr = '';

  const status = (): Promise<StatusResponse> =>
    new Promise((resolve, reject) =>
      admin.status(StatusRequest.create(), (err, res) => (err ? reject(err) : resolve(res))),
    );
  const allNodes = (s: StatusResponse) =>
    s.clusters.flatMap((c) => c.nodes.map((n) => ({ cluster: c.name, ...n })));
  async function until(
    what: string,
    pred: (s: StatusResponse) => boolean,
    timeoutMs = 60_000,
  ): Promise<StatusResponse> {
    const end = Date.now() + timeoutMs;
    let last: StatusResponse | undefined;
    while (Date.now() < end) {
      last = await status();
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `timed out waiting for ${what}; last status: ${JSON.stringify(last)}\n${stderr}`,
    );
  }
  const allInSyncAtLatest = (s: StatusResponse) =>
    s.revision > 0 &&
    allNodes(s).length === 4 &&
    allNodes(s).every((n) => n.state === 'in-sync' && n.syncedRevision === s.revision);

  beforeAll(async () => {
    work = await tempDir('e2e-');
    mesh = join(work.path, 'mesh');
    stateDir = join(work.path, 'state');
    await cp(join(ROOT, 'clusters/demo'), mesh, { recursive: true });
    up = spawn(process.execPath, [MESHCTL, 'up', '--clusters', mesh, '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    upExit = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
    const ready = await new Promise<{ controlPlane: string }>((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { event?: string; controlPlane: string };
        if (msg.event === 'ready') resolve(msg);
      });
      void upExit.then((code) =>
        reject(new Error(`meshctl up exited ${String(code)}:\n${stderr}`)),
      );
    });
    // mTLS is the default: the admin API wants the admin certificate `up` issued.
    const t = clientTransport(await readTlsMaterial(meshTlsLayout(join(stateDir, 'tls')).admin));
    admin = new MeshAdminClient(ready.controlPlane, t.credentials, t.options);
  }, 120_000);

  afterAll(async () => {
    admin?.close();
    if (up && up.exitCode === null) {
      up.kill('SIGINT');
      await upExit;
    }
    await work?.cleanup();
  }, 60_000);

  it('brings every node of both clusters in-sync at the latest mesh revision', async () => {
    const s = await until('all 4 nodes in-sync', allInSyncAtLatest);
    expect(s.clusters.map((c) => [c.name, c.id, c.nodes.map((n) => n.name)])).toEqual([
      ['eu', 1, ['eu-1', 'eu-2']],
      ['us', 2, ['us-1', 'us-2']],
    ]);
    expect(s.clusters.every((c) => c.source?.connected && c.source.lastError === '')).toBe(true);
    expect(s.clusters.find((c) => c.name === 'eu')!.endpoints).toBeGreaterThan(0);

    // The CLI reports the same through its JSON contract.
    const { stdout } = await run(process.execPath, [
      MESHCTL,
      'status',
      '--json',
      '--state-dir',
      stateDir,
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as {
      apiVersion: string;
      revision: number;
      clusters: {
        name: string;
        nodes: {
          name: string;
          state: string;
          ackedRevision: number;
          syncedRevision: number;
          lagMs: number;
          since: string | null;
          error: string;
        }[];
      }[];
    };
    expect(doc.apiVersion).toBe('meshplane/v1');
    expect(doc.revision).toBeGreaterThanOrEqual(s.revision);
    for (const n of doc.clusters.flatMap((c) => c.nodes)) {
      expect(Object.keys(n).sort()).toEqual([
        'ackedRevision',
        'error',
        'lagMs',
        'name',
        'since',
        'state',
        'syncedRevision',
      ]);
    }
  });

  it('enforces the demo policies: live traces agree with the probes file, endpoints show what was shipped', async () => {
    await until('all 4 nodes in-sync', allInSyncAtLatest);
    const doc = parseYaml(await readFile(join(ROOT, 'clusters/demo/probes.yaml'), 'utf8')) as {
      probes: {
        from: string;
        to: string;
        port: number;
        protocol: string;
        expect: 'allow' | 'deny';
      }[];
    };
    for (const p of doc.probes) {
      const r = await new Promise<{ allowed: boolean; reason: string }>((resolve, reject) =>
        admin.trace({ from: p.from, to: p.to, port: p.port, protocol: 6 }, (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
      expect(r.allowed, `${p.from} -> ${p.to}:${p.port}: ${r.reason}`).toBe(p.expect === 'allow');
    }
    // The CLI's trace JSON carries the decision object DESIGN.md defines.
    const { stdout } = await run(process.execPath, [
      MESHCTL,
      'policy',
      'trace',
      '--json',
      '--state-dir',
      stateDir,
      '--from',
      'eu/production/legacy-service-84d6c5b9f-zr7mc',
      '--to',
      'eu/production/billing-service-5b8d7f9c6-t4vxk',
      '--port',
      '8080/TCP',
    ]);
    const trace = JSON.parse(stdout) as {
      allowed: boolean;
      decision: { kind: string; section: string };
    };
    expect(trace).toMatchObject({
      allowed: false,
      decision: { kind: 'default-deny', section: 'ingress' },
    });

    const { stdout: eps } = await run(process.execPath, [
      MESHCTL,
      'endpoints',
      '--json',
      '--state-dir',
      stateDir,
    ]);
    const endpoints = (
      JSON.parse(eps) as {
        endpoints: {
          name: string;
          enforcement: { ingress: boolean; egress: boolean };
          entries: number;
          errors: string[];
        }[];
      }
    ).endpoints;
    const billing = endpoints.find((e) => e.name === 'billing-service-5b8d7f9c6-t4vxk')!;
    expect(billing.enforcement).toEqual({ ingress: true, egress: false });
    expect(billing.entries).toBeGreaterThan(0);
    expect(endpoints.find((e) => e.name === 'legacy-service-84d6c5b9f-zr7mc')!.enforcement).toEqual(
      { ingress: false, egress: false },
    );
    expect(endpoints.every((e) => e.errors.length === 0)).toBe(true);
  });

  it('a new pod (every ipcache changes) reaches every node', async () => {
    const before = (await until('in-sync', allInSyncAtLatest)).revision;
    await writeFile(join(mesh, 'eu/production/reporting.yaml'), NEW_POD(''));
    const s = await until(
      'new revision everywhere',
      (st) => st.revision > before && allInSyncAtLatest(st),
    );
    // Every node received and acknowledged the revision itself.
    for (const n of allNodes(s)) expect(n.ackedRevision, `${n.cluster}/${n.name}`).toBe(s.revision);
  });

  it('a change to one pod reaches only its node; the others are in-sync without receiving anything', async () => {
    const before = await until('in-sync', allInSyncAtLatest);
    await writeFile(
      join(mesh, 'eu/production/reporting.yaml'),
      NEW_POD(`      ports:
        - name: metrics
          containerPort: 9090
          protocol: TCP
`),
    );
    const s = await until(
      'the port change applied',
      (st) => st.revision > before.revision && allInSyncAtLatest(st),
    );
    for (const n of allNodes(s)) {
      const prev = allNodes(before).find((p) => p.cluster === n.cluster && p.name === n.name)!;
      if (n.cluster === 'eu' && n.name === 'eu-2') expect(n.ackedRevision).toBe(s.revision);
      else
        expect(n.ackedRevision, `${n.cluster}/${n.name} received nothing`).toBe(prev.ackedRevision);
      expect(n.syncedRevision).toBe(s.revision);
    }
  });

  it('a malformed manifest is reported with file, document, object and field; the mesh keeps its last good state', async () => {
    const before = await until('in-sync', allInSyncAtLatest);
    const file = join(mesh, 'eu/production/reporting.yaml');
    const good = await readFile(file, 'utf8');
    await writeFile(file, good.replace('containerPort: 9090', 'containerPort: nine-thousand'));
    const s = await until(
      'the error is visible',
      (st) => (st.clusters.find((c) => c.name === 'eu')?.source?.lastError ?? '') !== '',
    );
    const error = s.clusters.find((c) => c.name === 'eu')!.source!.lastError;
    expect(error).toContain('reporting.yaml');
    expect(error).toMatch(/document 0/);
    expect(error).toContain('Pod/production/reporting-7d9f8-abcde');
    expect(error).toContain('spec.containers[0].ports[0].containerPort');
    expect(s.revision).toBe(before.revision);
    expect(allInSyncAtLatest(s)).toBe(true);

    // Fixed: the error clears and changes flow again.
    await writeFile(file, good.replace('containerPort: 9090', 'containerPort: 9091'));
    await until(
      'error cleared and change applied',
      (st) =>
        st.revision > before.revision &&
        allInSyncAtLatest(st) &&
        st.clusters.every((c) => c.source?.lastError === ''),
    );
  });

  it("the demo's NATS refuses anonymous clients and a source speaking for another cluster", async () => {
    const state = JSON.parse(await readFile(join(stateDir, 'mesh.json'), 'utf8')) as {
      nats: string;
    };
    await expect(connect({ servers: state.nats })).rejects.toMatchObject({
      code: 'AUTHORIZATION_VIOLATION',
    });
    const creds = JSON.parse(await readFile(join(stateDir, 'nats/source-eu.json'), 'utf8')) as {
      user: string;
      pass: string;
      inboxPrefix: string;
    };
    // Passwords reach each process in its own file, never on a command line `ps` shows.
    const { stdout: children } = await run('pgrep', ['-P', String(up.pid)]);
    for (const pid of children.trim().split('\n').filter(Boolean)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      expect(cmdline).not.toContain(creds.pass);
    }
    const nc = await connect({ servers: state.nats, ...creds });
    try {
      await expect(
        nc.jetstream().publish('meshplane.events.us', new TextEncoder().encode('{}')),
      ).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    } finally {
      await nc.close();
    }
  });

  it('runs mTLS by default: one certificate per process, keys 0600, plain text refused', async () => {
    const tls = meshTlsLayout(join(stateDir, 'tls'));
    for (const key of [
      tls.ca.key,
      tls.controlPlane.key,
      tls.admin.key,
      tls.agent('eu', 'eu-1').key,
    ]) {
      expect((await stat(key)).mode & 0o777, key).toBe(0o600);
    }
    // Each agent was given the paths of its own certificate, never key material.
    const { stdout: ps } = await run('ps', ['-o', 'args=', '--ppid', String(up.pid)]);
    const agentLine = ps.split('\n').find((l) => l.includes('--node eu-1'));
    expect(agentLine).toContain(`--tls-cert ${tls.agent('eu', 'eu-1').cert}`);
    expect(ps).not.toContain('BEGIN');
    expect(ps).not.toContain('--insecure');
    const state = JSON.parse(await readFile(join(stateDir, 'mesh.json'), 'utf8')) as {
      controlPlane: string;
    };
    const plain = new MeshAdminClient(state.controlPlane, grpc.credentials.createInsecure());
    try {
      await expect(
        new Promise((resolve, reject) =>
          plain.status(
            StatusRequest.create(),
            new grpc.Metadata(),
            { deadline: Date.now() + 5000 },
            (err, res) => (err ? reject(err) : resolve(res)),
          ),
        ),
      ).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    } finally {
      plain.close();
    }
  });

  it('Ctrl-C stops every process and removes what it created', async () => {
    const state = JSON.parse(await readFile(join(stateDir, 'mesh.json'), 'utf8')) as {
      etcd: string;
    };
    expect(state.etcd).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { stdout: children } = await run('pgrep', ['-P', String(up.pid)]);
    const pids = children.trim().split('\n').filter(Boolean).map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(8); // etcd, nats, control plane, 2 sources, 4 agents (≥)
    up.kill('SIGINT');
    expect(await upExit).toBe(0);
    // Orphans may linger as zombies until init reaps them: those are gone too.
    const alive = async (): Promise<number[]> => {
      const out: number[] = [];
      for (const pid of pids) {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        if (stat !== '' && !/^\d+ \(.*\) Z/.test(stat)) out.push(pid);
      }
      return out;
    };
    const deadline = Date.now() + 10_000;
    while ((await alive()).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(await alive(), 'processes still running after meshctl up exited').toEqual([]);
    await expect(readFile(join(stateDir, 'mesh.json'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(stateDir, 'data'))).rejects.toThrow(/ENOENT/);
    await expect(readFile(join(stateDir, 'nats'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(stateDir, 'tls'))).rejects.toThrow(/ENOENT/);
    await rm(stateDir, { recursive: true, force: true });
  });
});
