import { execFile } from 'node:child_process';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from 'nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isMeshError } from '../common/index.js';
import {
  LaunchError,
  findBinary,
  startEtcd,
  startInfra,
  startNats,
  type EtcdServer,
  type NatsServer,
} from '../launcher/index.js';
import { tempDir, useInfra, type TempDir } from './harness/index.js';

describe('startInfra', () => {
  const servers = useInfra();
  const accessBeforeStart = errorOf(() => servers.etcd);

  it('useInfra refuses access before its beforeAll ran', () => {
    expect(accessBeforeStart?.message).toMatch(/not running/);
  });

  it('starts etcd and NATS on distinct loopback ports in fresh meshplane- dirs', () => {
    const urls = [servers.etcd.endpoint, servers.nats.url, servers.nats.monitorUrl].map(
      (u) => new URL(u),
    );
    expect(urls.map((u) => u.hostname)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
    expect(new Set(urls.map((u) => u.port)).size).toBe(3);
    expect(servers.nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    for (const dir of [servers.etcd.dataDir, servers.nats.dataDir]) {
      expect(dir.startsWith(join(tmpdir(), 'meshplane-'))).toBe(true);
      expect(existsSync(dir)).toBe(true);
    }
    expect(isRunning(servers.etcd.pid)).toBe(true);
    expect(isRunning(servers.nats.pid)).toBe(true);
  });

  it('serves etcd reads and writes through the v3 JSON gateway', async () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await etcdCall(servers.etcd, 'kv/put', { key: b64('/meshplane/test'), value: b64('hello') });
    const range = (await etcdCall(servers.etcd, 'kv/range', { key: b64('/meshplane/test') })) as {
      kvs?: { value: string }[];
    };
    expect(Buffer.from(range.kvs?.[0]?.value ?? '', 'base64').toString()).toBe('hello');
  });

  it('raises etcd limits so a large change set fits in one transaction', async () => {
    // 200 puts: over etcd's default of 128 operations per transaction.
    const success = Array.from({ length: 200 }, (_, i) => ({
      request_put: { key: Buffer.from(`/txn/${i}`).toString('base64'), value: 'eA==' },
    }));
    const txn = (await etcdCall(servers.etcd, 'kv/txn', { success })) as { succeeded?: boolean };
    expect(txn.succeeded).toBe(true);
  });

  it('runs NATS with JetStream in its data dir and an 8MB max payload', async () => {
    const varz = (await (await fetch(`${servers.nats.monitorUrl}/varz`)).json()) as {
      max_payload: number;
      jetstream?: { config?: { store_dir?: string } };
    };
    expect(varz.max_payload).toBe(8 * 1024 * 1024);
    expect(varz.jetstream?.config?.store_dir).toContain(servers.nats.dataDir);

    const nc = await connect({ servers: servers.nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: 'launcher_test', subjects: ['launcher.test'] });
      const ack = await nc.jetstream().publish('launcher.test', new TextEncoder().encode('x'));
      expect(ack.seq).toBe(1);
    } finally {
      await nc.close();
    }
  });
});

describe('stop', () => {
  let base: TempDir;
  beforeEach(async () => {
    base = await tempDir('launcher-');
  });
  afterEach(async () => {
    await base.cleanup();
  });

  it.each([
    ['etcd', () => startEtcd({ baseDir: base.path })],
    ['nats-server', () => startNats({ baseDir: base.path })],
  ] as const)('%s: kills the process and removes the data dir, idempotently', async (_, start) => {
    const server: EtcdServer | NatsServer = await start();
    expect(existsSync(server.dataDir)).toBe(true);
    await Promise.all([server.stop(), server.stop()]);
    expect(signalZero(server.pid)).toBe('ESRCH');
    expect(existsSync(server.dataDir)).toBe(false);
    await server.stop();
  });

  it('keeps the data dir with keepData', async () => {
    const nats = await startNats({ baseDir: base.path, keepData: true });
    await nats.stop();
    expect(signalZero(nats.pid)).toBe('ESRCH');
    expect(existsSync(join(nats.dataDir, 'nats-server.conf'))).toBe(true);
  });

  it('stops a started server when its signal aborts', async () => {
    const ac = new AbortController();
    const etcd = await startEtcd({ baseDir: base.path, signal: ac.signal });
    ac.abort();
    await etcd.stop(); // joins the stop the abort began
    expect(signalZero(etcd.pid)).toBe('ESRCH');
    expect(await readdir(base.path)).toEqual([]);
  });
});

describe('startup failure', () => {
  let base: TempDir;
  let scratch: TempDir;
  beforeEach(async () => {
    base = await tempDir('launcher-base-');
    scratch = await tempDir('launcher-scratch-');
  });
  afterEach(async () => {
    await base.cleanup();
    await scratch.cleanup();
  });

  /** A stand-in server that logs its pid and never becomes ready. */
  async function neverReadyServer(): Promise<string> {
    const path = join(scratch.path, 'never-ready');
    await writeFile(path, '#!/bin/sh\necho "pid $$"\nexec sleep 60\n');
    await chmod(path, 0o755);
    return path;
  }

  async function expectNothingLeft(): Promise<void> {
    expect(await readdir(base.path)).toEqual([]);
    expect(processesMentioning(base.path)).toEqual([]);
  }

  it('finds the installed binaries', () => {
    expect(findBinary('etcd')).toMatch(/^\/.*\/etcd$/);
    expect(findBinary('nats-server')).toMatch(/^\/.*\/nats-server$/);
  });

  it('rejects with LAUNCH_FAILED when the binary does not exist', async () => {
    const err = await startEtcd({
      baseDir: base.path,
      binaries: { etcd: join(scratch.path, 'no-such-etcd') },
    }).catch((e: unknown) => e);
    expect(isMeshError(err, 'LAUNCH_FAILED')).toBe(true);
    await expectNothingLeft();
  });

  it('rejects with LAUNCH_FAILED and the exit status when the server exits early', async () => {
    const err = await startNats({
      baseDir: base.path,
      binaries: { 'nats-server': '/bin/false' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LaunchError);
    expect((err as LaunchError).code).toBe('LAUNCH_FAILED');
    expect((err as LaunchError).exitStatus).toEqual({ code: 1, signal: null });
    await expectNothingLeft();
  });

  it('rejects with LAUNCH_FAILED and kills the server when it is not ready in time', async () => {
    const pids: number[] = [];
    const err = await startEtcd({
      baseDir: base.path,
      binaries: { etcd: await neverReadyServer() },
      startTimeoutMs: 300,
      log: (line) => pids.push(Number(/^pid (\d+)$/.exec(line)?.[1])),
    }).catch((e: unknown) => e);
    expect(isMeshError(err, 'LAUNCH_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/not ready within 300ms[\s\S]*pid \d+/);
    expect(pids).toHaveLength(1);
    expect(signalZero(pids[0]!)).toBe('ESRCH');
    await expectNothingLeft();
  });

  it('rejects with the abort reason when aborted during startup, leaving nothing behind', async () => {
    const ac = new AbortController();
    let pid = 0;
    const err = await startNats({
      baseDir: base.path,
      binaries: { 'nats-server': await neverReadyServer() },
      signal: ac.signal,
      log: (line) => {
        pid = Number(/^pid (\d+)$/.exec(line)?.[1]);
        ac.abort(new Error('test aborted'));
      },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('test aborted');
    expect(pid).toBeGreaterThan(0);
    expect(signalZero(pid)).toBe('ESRCH');
    await expectNothingLeft();
  });

  it('rejects a pre-aborted signal without creating anything', async () => {
    const err = await startInfra({ baseDir: base.path, signal: AbortSignal.abort() }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe('AbortError');
    await expectNothingLeft();
  });

  it('retries etcd on new ports when a port is taken before etcd binds it', async () => {
    // Fails like etcd does on a port clash twice, then runs the real etcd.
    const flaky = join(scratch.path, 'flaky-etcd');
    const counter = join(scratch.path, 'attempts');
    await writeFile(
      flaky,
      `#!/bin/sh\necho x >> ${counter}\nif [ $(wc -l < ${counter}) -le 2 ]; then\n` +
        `  echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1\nfi\n` +
        `exec ${findBinary('etcd')} "$@"\n`,
    );
    await chmod(flaky, 0o755);
    const lines: string[] = [];
    const etcd = await startEtcd({
      baseDir: base.path,
      binaries: { etcd: flaky },
      log: (l) => lines.push(l),
    });
    try {
      expect(lines.filter((l) => l.includes('retrying'))).toHaveLength(2);
      expect(await readdir(base.path)).toHaveLength(1);
      expect((await fetch(`${etcd.endpoint}/health`)).ok).toBe(true);
    } finally {
      await etcd.stop();
    }
    await expectNothingLeft();
  });

  it('startInfra stops etcd when NATS fails', async () => {
    const err = await startInfra({
      baseDir: base.path,
      binaries: { 'nats-server': '/bin/false' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LaunchError);
    expect((err as LaunchError).server).toBe('nats-server');
    await expectNothingLeft();
  });

  it('kills servers and removes their dirs when Node exits without stopping them', async () => {
    const script = join(scratch.path, 'exit-without-stop.mts');
    const launcher = fileURLToPath(new URL('../launcher/index.js', import.meta.url));
    await writeFile(
      script,
      `import { startInfra } from ${JSON.stringify(launcher)};\n` +
        `const infra = await startInfra({ baseDir: ${JSON.stringify(base.path)} });\n` +
        `console.log(JSON.stringify([infra.etcd.pid, infra.nats.pid]));\n` +
        `process.exit(0);\n`,
    );
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script]);
    const pids = JSON.parse(stdout) as number[];
    expect(pids).toHaveLength(2);
    // Orphans are reaped by init, so they may linger briefly as zombies: isRunning.
    expect(pids.filter(isRunning)).toEqual([]);
    await expectNothingLeft();
  });
});

function errorOf(fn: () => unknown): Error | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err as Error;
  }
}

async function etcdCall(etcd: EtcdServer, path: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${etcd.endpoint}/v3/${path}`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return res.json();
}

/** The errno `kill(pid, 0)` fails with, or 'alive'. */
function signalZero(pid: number): string {
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function isRunning(pid: number): boolean {
  if (signalZero(pid) === 'ESRCH') return false;
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1];
    return state?.startsWith('Z') !== true;
  } catch {
    return false;
  }
}

/** Live processes whose command line mentions `text` (e.g. a data dir under a test's base). */
function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number)
    .filter(isRunning);
}
