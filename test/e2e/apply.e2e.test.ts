// `meshctl apply`, `delete` and `history` as a user runs them against a
// `meshctl up` mesh (a copy of the demo: eu + us, separate processes, mTLS):
// exit codes, the one-line JSON documents, the cluster folder as the source
// of truth, and the audit trail naming the admin certificate.
// Slow (~100 s on this shared 2-core machine): `up` starts 8 processes and
// every step runs meshctl as its own Node process, as a user would.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMeshTls } from '../../common/tls/index.js';
import { tempDir, waitFor, type TempDir } from '../harness/index.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

const LOCKDOWN = `# only the frontend may reach the legacy service
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: legacy-lockdown
  namespace: production
spec:
  endpointSelector:
    matchLabels:
      app: legacy-service
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: frontend
`;

const INVALID = `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata:
  name: broken
spec:
  endpointSelector: {}
  egress:
    - toPorts:
        - ports:
            - port: "80"
              protocol: ICMP
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: stray
  namespace: nowhere
spec:
  podSelector: {}
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function meshctl(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MESHCTL, ...args], { timeout: 90_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The single JSON line a `--json` command must print. */
function jsonOf(run: Run): Record<string, unknown> {
  const lines = run.stdout.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(doc.apiVersion).toBe('meshplane/v1');
  return doc;
}

async function digest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const path = join(d, name);
      if ((await stat(path)).isDirectory()) await walk(path);
      else hash.update(`${path}\0${await readFile(path, 'utf8')}\0`);
    }
  };
  await walk(dir);
  return hash.digest('hex');
}

describe('meshctl apply / delete / history on a running mesh', () => {
  let work: TempDir;
  let mesh: string;
  let stateDir: string;
  let up: ChildProcess;
  let upExit: Promise<number | null>;
  let controlPlane: string;
  let upStderr = '';
  const at = (...args: string[]): string[] => [...args, '--state-dir', stateDir];

  beforeAll(async () => {
    work = await tempDir('e2e-apply-');
    mesh = join(work.path, 'mesh');
    stateDir = join(work.path, 'state');
    await cp(join(ROOT, 'clusters/demo'), mesh, { recursive: true });
    await writeFile(join(work.path, 'lockdown.yaml'), LOCKDOWN);
    await writeFile(join(work.path, 'invalid.yaml'), INVALID);
    up = spawn(process.execPath, [MESHCTL, 'up', '--clusters', mesh, '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    up.stderr!.on('data', (d: Buffer) => (upStderr += d.toString()));
    upExit = new Promise((resolve) => up.once('exit', (code) => resolve(code)));
    controlPlane = await new Promise<string>((resolve, reject) => {
      createInterface({ input: up.stdout! }).on('line', (line) => {
        const msg = JSON.parse(line) as { event?: string; controlPlane: string };
        if (msg.event === 'ready') resolve(msg.controlPlane);
      });
      void upExit.then((code) =>
        reject(new Error(`meshctl up exited ${String(code)}:\n${upStderr}`)),
      );
    });
    // Both sources have published their folders.
    await waitFor(
      'both clusters connected',
      async () => {
        const s = jsonOf(await meshctl(at('status', '--json'))) as {
          clusters: { source: { connected: boolean } }[];
        };
        return s.clusters.length === 2 && s.clusters.every((c) => c.source.connected);
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  }, 180_000);

  afterAll(async () => {
    if (up && up.exitCode === null) {
      up.kill('SIGINT');
      await upExit;
    }
    await work?.cleanup();
  }, 60_000);

  it('applies a policy to one cluster and prints the revision to wait for', async () => {
    const file = join(work.path, 'lockdown.yaml');
    // Two clusters: the target must be named.
    const unnamed = await meshctl(at('apply', '-f', file));
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toContain('name one with --cluster');

    const run = await meshctl(at('apply', '-f', file, '--cluster', 'eu', '--json'));
    expect(run.code, run.stderr).toBe(0);
    const doc = jsonOf(run) as { revision: number; objects: unknown[] };
    expect(doc.revision).toBeGreaterThan(0);
    expect(doc.objects).toEqual([
      {
        cluster: 'eu',
        kind: 'CiliumNetworkPolicy',
        namespace: 'production',
        name: 'legacy-lockdown',
        action: 'created',
      },
    ]);
    // The folder is the source of truth: the document is in it, as written.
    expect(
      await readFile(
        join(mesh, 'eu', 'production', 'ciliumnetworkpolicy-legacy-lockdown.yaml'),
        'utf8',
      ),
    ).toBe(LOCKDOWN);
    const policy = await waitFor(
      'the policy in `meshctl policies`',
      async () => {
        const p = jsonOf(await meshctl(at('policies', '--json'))) as {
          revision: number;
          policies: { cluster: string; name: string; selected: string[] }[];
        };
        const found = p.policies.find((x) => x.name === 'legacy-lockdown');
        return p.revision >= doc.revision && found ? found : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(policy.cluster).toBe('eu');
    expect(policy.selected.length).toBeGreaterThan(0);
  });

  it('refuses an invalid change set with exit 2 and every error; nothing changes', async () => {
    const before = await digest(mesh);
    const run = await meshctl(
      at('apply', '-f', join(work.path, 'invalid.yaml'), '--all-clusters', '--json'),
    );
    expect(run.code).toBe(2);
    const { errors } = jsonOf(run) as {
      errors: { cluster?: string; file: string; document: number; object: string }[];
    };
    const file = join(work.path, 'invalid.yaml');
    expect(errors.map((e) => [e.cluster ?? '*', e.file, e.document, e.object])).toEqual([
      ['*', file, 0, 'CiliumClusterwideNetworkPolicy/broken'],
      ['eu', file, 1, 'NetworkPolicy/nowhere/stray'],
      ['us', file, 1, 'NetworkPolicy/nowhere/stray'],
    ]);
    expect(await digest(mesh)).toBe(before);
  });

  it('deletes what a file names', async () => {
    const run = await meshctl(
      at('delete', '-f', join(work.path, 'lockdown.yaml'), '--cluster', 'eu', '--json'),
    );
    expect(run.code, run.stderr).toBe(0);
    expect((jsonOf(run) as { objects: { action: string }[] }).objects).toEqual([
      expect.objectContaining({ name: 'legacy-lockdown', action: 'deleted' }),
    ]);
    expect(await readdir(join(mesh, 'eu', 'production'))).not.toContain(
      'ciliumnetworkpolicy-legacy-lockdown.yaml',
    );
  });

  it('lists who applied what, when, at which revision', async () => {
    const doc = jsonOf(await meshctl(at('history', '--json'))) as {
      entries: { who: string; action: string; status: string; revision: number; at: string }[];
    };
    expect(doc.entries.map((e) => `${e.action}:${e.status}`)).toEqual([
      'delete:committed',
      'apply:failed',
      'apply:committed',
    ]);
    for (const e of doc.entries) expect(e.who).toMatch(/^spiffe:\/\/meshplane\/admin\/[a-z0-9-]+$/);
    expect(doc.entries[0]!.revision).toBeGreaterThan(doc.entries[2]!.revision);
  });

  it('refuses a client whose certificate is not from the mesh CA', async () => {
    // A state dir with an admin certificate of another CA, pointed at this mesh.
    const fake = join(work.path, 'fake-state');
    await writeMeshTls(join(fake, 'tls'), { agents: [], adminUser: 'intruder' });
    const before = await digest(mesh);
    const run = await meshctl([
      'apply',
      '-f',
      join(work.path, 'lockdown.yaml'),
      '--cluster',
      'eu',
      '--server',
      controlPlane,
      '--state-dir',
      fake,
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/unreachable|refused/);
    expect(await digest(mesh)).toBe(before);
  });
});
