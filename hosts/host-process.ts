import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { MeshError } from '../common/index.js';
import { guardProcess } from '../launcher/index.js';

/** What a connection attempt saw (DESIGN.md: connected|timeout|refused; the last two are rare). */
export type Outcome = 'connected' | 'timeout' | 'refused' | 'unreachable' | 'error';

export interface LoadResult {
  ok: number;
  timeout: number;
  refused: number;
  other: number;
  /** latency of one connect + request + response + close, microseconds */
  p50Us: number;
  p99Us: number;
}

/**
 * One mp-host process inside a network namespace: it serves the namespace's
 * ports and runs connection attempts from there. Commands may run
 * concurrently; each answer is matched to its command by id. When its stdin
 * closes (this process dies, even by SIGKILL) it exits by itself.
 */
export class HostProcess {
  private readonly pending = new Map<string, (fields: string[]) => void>();
  private nextId = 0;
  private exitedWith: string | undefined;
  private onReady: (() => void) | undefined;
  readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly stderr: string[],
  ) {
    const release = guardProcess(child.pid!);
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        release();
        this.exitedWith = `exited (${signal ?? String(code)})${stderr.length ? `: ${stderr.join(' ')}` : ''}`;
        for (const fail of this.pending.values()) fail([]);
        this.pending.clear();
        resolve();
      }),
    );
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') return this.onReady?.();
      const fields = line.split(' ');
      const answer = this.pending.get(fields[0]!);
      if (answer === undefined) return;
      this.pending.delete(fields[0]!);
      answer(fields.slice(1));
    });
  }

  /** Starts mp-host in `netns` serving the given ports; resolves once every port is bound. */
  static async start(
    name: string,
    binary: string,
    netns: string,
    ports: { tcp: readonly number[]; udp: readonly number[] },
    opts: { signal?: AbortSignal | undefined; cpu?: number | undefined } = {},
  ): Promise<HostProcess> {
    opts.signal?.throwIfAborted();
    const args = [
      ...(opts.cpu === undefined ? [] : ['--cpu', String(opts.cpu)]),
      ...ports.tcp.flatMap((p) => ['--tcp', String(p)]),
      ...ports.udp.flatMap((p) => ['--udp', String(p)]),
    ];
    const child = spawn('ip', ['netns', 'exec', netns, binary, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stderr: string[] = [];
    createInterface({ input: child.stderr }).on('line', (l) => {
      if (stderr.length < 20) stderr.push(l);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) =>
        reject(new MeshError('LAUNCH_FAILED', `${name}: cannot start mp-host: ${e.message}`)),
      );
    });
    const host = new HostProcess(name, child, stderr);
    const ready = new Promise<boolean>((resolve) => {
      host.onReady = () => resolve(true);
      void host.exited.then(() => resolve(false));
    });
    if (!(await ready)) {
      throw new MeshError('LAUNCH_FAILED', `${name}: mp-host in ${netns} ${host.exitedWith}`);
    }
    return host;
  }

  private command(verb: string, args: (string | number)[], id?: string): Promise<string[]> {
    if (this.exitedWith !== undefined)
      return Promise.reject(new MeshError('UNAVAILABLE', `${this.name}: ${this.exitedWith}`));
    const key = id ?? `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      this.pending.set(key, (fields) => {
        if (fields.length === 0)
          reject(new MeshError('UNAVAILABLE', `${this.name}: ${this.exitedWith ?? 'exited'}`));
        else if (fields[0] === 'error')
          reject(new MeshError('INTERNAL', `${this.name}: mp-host: ${fields.join(' ')}`));
        else resolve(fields);
      });
      this.child.stdin.write(`${verb} ${key} ${args.join(' ')}\n`);
    });
  }

  /** One TCP handshake or one UDP request/reply to ip:port within timeoutMs. */
  async probe(
    protocol: 'TCP' | 'UDP',
    ip: string,
    port: number,
    timeoutMs: number,
  ): Promise<{ outcome: Outcome; micros: number }> {
    const f = await this.command('probe', [protocol.toLowerCase(), ip, port, timeoutMs]);
    return { outcome: f[1] as Outcome, micros: Number(f[2]) };
  }

  /** Opens a TCP connection and keeps it under `id` (unique per host) for ping/drop. */
  async hold(id: string, ip: string, port: number, timeoutMs: number): Promise<Outcome> {
    const f = await this.command('hold', [ip, port, timeoutMs], id);
    return f[1] as Outcome;
  }

  /** Sends one byte on a held connection and waits for its echo. */
  async ping(id: string, timeoutMs: number): Promise<'ok' | 'timeout' | 'closed'> {
    const f = await this.command('ping', [timeoutMs], id);
    return f[1] as 'ok' | 'timeout' | 'closed';
  }

  async drop(id: string): Promise<void> {
    await this.command('drop', [], id);
  }

  /** Short-lived request/response TCP connections in `concurrency` loops for `millis`. */
  async load(
    ip: string,
    port: number,
    millis: number,
    concurrency: number,
    timeoutMs: number,
  ): Promise<LoadResult> {
    const f = await this.command('load', [ip, port, millis, concurrency, timeoutMs]);
    const kv = new Map(f.slice(1).map((p) => p.split('=') as [string, string]));
    const n = (k: string): number => Number(kv.get(k) ?? NaN);
    return {
      ok: n('ok'),
      timeout: n('timeout'),
      refused: n('refused'),
      other: n('other'),
      p50Us: n('p50'),
      p99Us: n('p99'),
    };
  }

  /** Ends the process (closing stdin is enough; SIGKILL if it lingers). Idempotent. */
  async stop(): Promise<void> {
    if (this.exitedWith !== undefined) return;
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
  }
}
