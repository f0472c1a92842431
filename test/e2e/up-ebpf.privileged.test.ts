// `meshctl up --datapath ebpf` as a user runs it, on a copy of the demo mesh:
// every node and pod a network namespace, one eBPF agent per node. Waits for
// all four nodes in-sync, makes real TCP connections between pod namespaces
// (allowed and denied by the demo's policies, judged by the kernel), then
// Ctrl-C and checks that nothing is left: processes, namespaces, pins, state.
// Slow (~40-90 s on 2 loaded cores): it starts ~20 processes (mesh and
// namespace hosts) and waits for real propagation and program attachment.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePrivileged, tempDir, waitFor, type TempDir } from '../harness/index.js';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

interface Testbed {
  runId: string;
  pinDir: string;
  nodes: Record<string, string>;
  pods: Record<string, { netns: string; ip: string; nodeNetns: string; hostIfname: string }>;
}

/** One TCP connection attempt from inside a namespace: connected, refused or timeout. */
const CONNECT = `
const [ip, port, ms] = process.argv.slice(1);
const s = require('node:net').connect({ host: ip, port: Number(port) });
const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, Number(ms));
s.on('connect', () => { clearTimeout(t); console.log('connected'); s.destroy(); });
s.on('error', (e) => { clearTimeout(t); console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); });
`;

async function connectFrom(netns: string, ip: string, port: number): Promise<string> {
  const { stdout } = await run('ip', [
    'netns',
    'exec',
    netns,
    process.execPath,
    '-e',
    CONNECT,
    ip,
    String(port),
    '1500',
  ]);
  return stdout.trim();
}

async function programsAttached(pod: Testbed['pods'][string]): Promise<boolean> {
  for (const dir of ['ingress', 'egress']) {
    const { stdout } = await run('tc', [
      '-n',
      pod.nodeNetns,
      'filter',
      'show',
      'dev',
      pod.hostIfname,
      dir,
    ]);
    if (!/ bpf /.test(stdout)) return false;
  }
  return true;
}

describe.skipIf(!requirePrivileged())('meshctl up --datapath ebpf on the demo mesh', () => {
  let work: TempDir;
  let stateDir: string;
  let up: ChildProcess;
  let upExit: Promise<number | null>;
  let bed: Testbed;
  let stderr = '';

  beforeAll(async () => {
    work = await tempDir('up-ebpf-');
    const mesh = join(work.path, 'mesh');
    stateDir = join(work.path, 'state');
    await cp(join(ROOT, 'clusters/demo'), mesh, { recursive: true });
    up = spawn(
      process.execPath,
      [MESHCTL, 'up', '--datapath', 'ebpf', '--clusters', mesh, '--state-dir', stateDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    upExit = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => {
        if ((JSON.parse(line) as { event?: string }).event === 'ready') resolve();
      });
      void upExit.then((code) =>
        reject(new Error(`meshctl up exited ${String(code)}:\n${stderr}`)),
      );
    });
    bed = (
      JSON.parse(await readFile(join(stateDir, 'mesh.json'), 'utf8')) as {
        testbed: Testbed;
      }
    ).testbed;
  }, 120_000);

  afterAll(async () => {
    if (up && up.exitCode === null && up.signalCode === null) {
      up.kill('SIGINT');
      await upExit;
    }
    await work?.cleanup();
  }, 60_000);

  it('refuses without root, saying why (exit 2)', async () => {
    // The same command as user nobody (util-linux setpriv drops uid, gid and groups).
    const r = await run('setpriv', [
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      process.execPath,
      MESHCTL,
      'up',
      '--datapath',
      'ebpf',
      '--state-dir',
      join(work.path, 'nobody'),
    ]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('up --datapath ebpf needs root');
  });

  it('brings all four nodes in-sync on the eBPF datapath, programs attached for every pod', async () => {
    expect(stderr).toContain('datapath ebpf');
    expect(Object.keys(bed.nodes).sort()).toEqual(['eu/eu-1', 'eu/eu-2', 'us/us-1', 'us/us-2']);
    await waitFor(
      'every node in-sync',
      async () => {
        const { stdout } = await run(process.execPath, [
          MESHCTL,
          'status',
          '--json',
          '--state-dir',
          stateDir,
        ]);
        const s = JSON.parse(stdout) as {
          revision: number;
          clusters: { nodes: { state: string; syncedRevision: number }[] }[];
        };
        const nodes = s.clusters.flatMap((c) => c.nodes);
        return (
          s.revision > 0 &&
          nodes.length === 4 &&
          nodes.every((n) => n.state === 'in-sync' && n.syncedRevision === s.revision)
        );
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    for (const [key, pod] of Object.entries(bed.pods))
      await waitFor(`programs attached for ${key}`, () => programsAttached(pod), {
        timeoutMs: 60_000,
        intervalMs: 250,
      });
  }, 160_000);

  it('lets the kernel allow and deny real connections as the demo policies say', async () => {
    const pod = (key: string): Testbed['pods'][string] => {
      const p = bed.pods[key];
      if (p === undefined) throw new Error(`no namespace for ${key}`);
      return p;
    };
    const frontend = pod('eu/production/frontend-6f4b9c7d8-h5pjr');
    const legacy = pod('eu/production/legacy-service-84d6c5b9f-zr7mc');
    const billing = pod('eu/production/billing-service-5b8d7f9c6-w9npd');
    const transactions = pod('eu/billing/transactions-7c9d5b8f4-x2kqv');
    const fraud = pod('us/risk/fraud-detection-9f7c6d5b4-k8dnw');
    const fraud2 = pod('us/risk/fraud-detection-9f7c6d5b4-s2hxq');
    // Only the frontend may call billing-service: legacy's SYN is dropped (no answer at all).
    expect(await connectFrom(frontend.netns, billing.ip, 8080)).toBe('connected');
    expect(await connectFrom(legacy.netns, billing.ip, 8080)).toBe('timeout');
    // No policy selects the frontend: legacy reaches it, so the drop above is the policy's.
    expect(await connectFrom(legacy.netns, frontend.ip, 8080)).toBe('connected');
    // Across clusters: us admits eu's transactions into fraud-detection, not the frontend.
    expect(await connectFrom(transactions.netns, fraud.ip, 50051)).toBe('connected');
    expect(await connectFrom(frontend.netns, fraud2.ip, 50051)).toBe('timeout');
  });

  it('Ctrl-C stops every process and removes namespaces, pins and state', async () => {
    const { stdout: children } = await run('pgrep', ['-P', String(up.pid)]);
    const pids = children.trim().split('\n').filter(Boolean).map(Number);
    // etcd, NATS, control plane, 2 sources, 4 agents, one mp-host per pod (≥ 9 of those)
    expect(pids.length).toBeGreaterThanOrEqual(9 + Object.keys(bed.pods).length);
    expect((await stat(bed.pinDir)).isDirectory()).toBe(true);
    up.kill('SIGINT');
    expect(await upExit).toBe(0);
    // Orphans may linger as zombies until init reaps them: those are gone too.
    const alive = async (): Promise<number[]> => {
      const out: number[] = [];
      for (const pid of pids) {
        const s = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
        if (s !== '' && !/^\d+ \(.*\) Z/.test(s)) out.push(pid);
      }
      return out;
    };
    await waitFor('every child gone', async () => (await alive()).length === 0, {
      timeoutMs: 10_000,
    });
    const { stdout: netns } = await run('ip', ['netns', 'list']);
    expect(netns.split('\n').filter((l) => l.startsWith(`mp-${bed.runId}-`))).toEqual([]);
    await expect(stat(bed.pinDir)).rejects.toThrow(/ENOENT/);
    await expect(stat(join(stateDir, 'mesh.json'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(stateDir, 'data'))).rejects.toThrow(/ENOENT/);
    await expect(stat(join(stateDir, 'tls'))).rejects.toThrow(/ENOENT/);
  });
});
