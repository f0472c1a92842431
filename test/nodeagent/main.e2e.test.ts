// The node agent binary as a real child process against a scripted stand-in
// for the control plane (ScriptedControlPlane, a real gRPC server).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, TYPE_IPCACHE } from '../../proto/index.js';
import { AsyncQueue } from './async-queue.js';
import { expectedDigest, part, shard } from './fixtures.js';
import { ScriptedControlPlane } from './scripted-control-plane.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const children: ChildProcess[] = [];
const planes: ScriptedControlPlane[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  for (const p of planes.splice(0)) await p.close();
});

function startAgent(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'nodeagent/main.ts', ...args], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const stdout = new AsyncQueue<string>();
  let stderr = '';
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) stdout.push(line);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, stdout, stderr: () => stderr, exited };
}

describe('nodeagent/main.ts', () => {
  it('connects, ACKs, prints ready, and exits 0 on SIGTERM', async () => {
    const cp = await ScriptedControlPlane.start();
    planes.push(cp);
    const agent = startAgent([
      '--insecure',
      '--server',
      cp.address,
      '--cluster',
      'eu',
      '--node',
      'eu-1',
      '--capacity-endpoints',
      '7',
    ]);
    const s = await cp.nextStream(20_000);
    const first = await s.nextRequest();
    expect(first).toMatchObject({
      node: { id: 'eu-1', cluster: 'eu' },
      protocolVersion: PROTOCOL_VERSION,
    });
    expect(first.capacity).toMatchObject({
      backend: 'emulated',
      endpoints: 7,
      ipcacheEntries: 524288,
    });

    const a = shard(0, [['10.1.0.1/32', 0x10100]]);
    s.send(
      part({ typeUrl: TYPE_IPCACHE, revision: 3, nonce: 'n', resources: [a], complete: true }),
    );
    const ack = await s.nextRequest();
    expect(ack).toMatchObject({
      responseNonce: 'n',
      appliedRevision: 3,
      digest: expectedDigest([a]),
    });
    expect(JSON.parse(await agent.stdout.next(5000, 'the ready line'))).toEqual({
      event: 'ready',
      node: 'eu-1',
      cluster: 'eu',
    });

    agent.child.kill('SIGTERM');
    const [code, signal] = await agent.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    await s.closed;
    // Logs are JSON lines on stderr.
    const logs = agent
      .stderr()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; node: string });
    expect(logs.some((l) => l.msg === 'revision applied' && l.node === 'eu-1')).toBe(true);
    expect(agent.stdout.size).toBe(0);
  });

  it('refuses a pin dir outside bpffs and bad usage with exit 2', async () => {
    const ebpf = startAgent([
      '--insecure',
      '--server',
      '127.0.0.1:1',
      '--cluster',
      'eu',
      '--node',
      'eu-1',
      '--datapath',
      'ebpf',
      '--pin-dir',
      '/tmp/meshplane-not-bpffs',
    ]);
    expect((await ebpf.exited)[0]).toBe(2);
    expect(ebpf.stderr()).toMatch(
      /--pin-dir: "\/tmp\/meshplane-not-bpffs" is not under \/sys\/fs\/bpf\//,
    );

    const usage = startAgent(['--cluster', 'eu', '--verify-interval', 'soon']);
    expect((await usage.exited)[0]).toBe(2);
    expect(usage.stderr()).toMatch(/--server: is required/);
    expect(usage.stderr()).toMatch(/--node: is required/);
    expect(usage.stderr()).toMatch(/--verify-interval: "soon" is not a duration/);
  });
});
