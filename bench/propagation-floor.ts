/**
 * `npm run bench -- propagation-floor [--json] [--connections N]
 *    [--first-bytes B] [--push-bytes P] [--answer-bytes A] [--rounds R]
 *    [--per-worker W] [--slice-size S] [--first-part-bytes F]`
 *
 * The floor under the propagation benchmark's (a) and RSS figures: the same
 * transport with nothing of meshplane on it. A grpc-js server in this process
 * (the control plane's server options, mTLS with the mesh CA's
 * certificates, the heap trim the xDS server does) and N clients in worker
 * processes, each with its own connection and one bidirectional stream, like
 * node agents. On raw bytes, no protobuf:
 * - connect: each client says hello, the server answers with a first message
 *   of B bytes (a node's first sync: ~134 KB at 1,000 nodes in the
 *   propagation workload; with F, as messages of F bytes written one after
 *   the other), the client answers; then RSS per connection
 *   (server RSS with N connections − RSS with none, after GC), as
 *   `rss_per_agent_kib` is measured;
 * - rounds: R times, the server writes P bytes to every stream (a push of one
 *   ipcache shard is ~600 bytes), S streams per event-loop turn as the
 *   PushScheduler slices a revision, and each client answers with A bytes
 *   (an ACK); latency is round start → the answer read by the server, and
 *   CPU per connection and round of the server and the clients.
 * What meshplane adds on top of these figures is its own cost.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { readTlsMaterial, serverCredentials, writeMeshTls } from '../common/tls/index.js';
import {
  discoveryServerOptions,
  glibcFixMmapThreshold,
  glibcMallocTrim,
} from '../controlplane/xds/index.js';
import { spawnTsx, type Child } from './lib/child.js';
import { FLOOR_SERVICE, type FloorPlan } from './lib/floor-service.js';
import { processCpuSeconds } from './lib/proc-cpu.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';
import { collector, settledMemory } from './lib/settled-memory.js';
import { percentile, round } from './lib/stats.js';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER_SCRIPT = fileURLToPath(new URL('./lib/floor-worker.ts', import.meta.url));

export interface PropagationFloorOptions {
  connections?: number;
  firstBytes?: number;
  pushBytes?: number;
  answerBytes?: number;
  rounds?: number;
  perWorker?: number;
  /** the first message as messages of at most this many bytes, each written once the previous has gone out */
  firstPartBytes?: number;
  /** streams written per event-loop turn in a round (default 64) */
  sliceSize?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

type Stream = grpc.ServerDuplexStream<Buffer, Buffer>;

/** `bytes` as messages of at most `partBytes`, the next written once the previous has gone out. */
function writeInParts(call: Stream, bytes: Buffer, partBytes: number, from = 0): void {
  if (from >= bytes.byteLength || !call.writable) return;
  const part = bytes.subarray(from, from + partBytes);
  call.write(part, (err: Error | null | undefined) =>
    err ? undefined : writeInParts(call, bytes, partBytes, from + partBytes),
  );
}

export async function runPropagationFloor(
  opts: PropagationFloorOptions = {},
): Promise<Record<string, number>> {
  const log = opts.log ?? (() => undefined);
  const signal = opts.signal ?? new AbortController().signal;
  const n = opts.connections ?? 1000;
  const first = Buffer.alloc(opts.firstBytes ?? 134_000, 2);
  const push = Buffer.alloc(opts.pushBytes ?? 600, 3);
  const slice = opts.sliceSize ?? 64;
  const cleanups: (() => Promise<unknown>)[] = [];
  const figures: Record<string, number> = {};
  try {
    const root = await mkdtemp(join(tmpdir(), 'meshplane-bench-propagation-floor-'));
    cleanups.push(() => rm(root, { recursive: true, force: true, maxRetries: 3 }));
    const id = { cluster: 'floor', node: 'node-0' };
    const tls = await writeMeshTls(
      join(root, 'tls'),
      { agents: [id], adminUser: 'bench', days: 1 },
      { signal, concurrency: 2 },
    );
    const agentFiles = tls.agents.get(`${id.cluster}/${id.node}`)!;

    const streams: Stream[] = [];
    let answered = 0;
    /** per stream: the round it last answered (-1: not yet greeted) */
    const lastAnswered: number[] = [];
    let round_ = -1;
    let roundStart = 0;
    let latencies: number[] = [];
    let roundDone: (() => void) | undefined;
    const server = new grpc.Server(discoveryServerOptions());
    server.addService(FLOOR_SERVICE, {
      echo: (call: Stream) => {
        const i = streams.length;
        streams.push(call);
        lastAnswered.push(-2);
        call.on('data', () => {
          if (lastAnswered[i] === -2) {
            lastAnswered[i] = -1;
            writeInParts(call, first, opts.firstPartBytes ?? first.byteLength);
            return;
          }
          if (round_ >= 0 && lastAnswered[i] !== round_) {
            lastAnswered[i] = round_;
            latencies.push(performance.now() - roundStart);
            answered += 1;
            if (answered === n) roundDone?.();
          }
        });
        call.on('error', () => undefined);
      },
    });
    const material = await readTlsMaterial(tls.controlPlane);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials(material), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    cleanups.push(() => new Promise<void>((r) => server.tryShutdown(() => r())));
    // As the control plane's process: glibc's mmap threshold fixed, and, as the xDS server's heap
    // trim does after connection churn, glibc's free memory back to the OS after each full GC.
    glibcFixMmapThreshold();
    const trim = glibcMallocTrim();
    const fullGc = collector();
    const gc = (): void => {
      fullGc();
      trim?.();
    };
    const idle = await settledMemory(gc);

    const perWorker = opts.perWorker ?? 250;
    const workers: { child: Child; ready: Promise<void> }[] = [];
    cleanups.push(() => Promise.all(workers.map((w) => w.child.stop())));
    let t = performance.now();
    for (let from = 0; from < n; from += perWorker) {
      const plan: FloorPlan = {
        server: `127.0.0.1:${port}`,
        ca: tls.ca.cert,
        cert: agentFiles.cert,
        key: agentFiles.key,
        connections: Math.min(perWorker, n - from),
        answerBytes: opts.answerBytes ?? 120,
      };
      const file = join(root, `plan-${from}.json`);
      await writeFile(file, JSON.stringify(plan));
      let ready!: () => void;
      const readyP = new Promise<void>((r) => (ready = r));
      const child = spawnTsx(WORKER_SCRIPT, ['--plan', file], {
        cwd: REPO_ROOT,
        onLine: (line) => {
          if (line.includes('"ready"')) ready();
        },
        onStderr: (line) => log(`[floor worker] ${line}`),
      });
      workers.push({
        child,
        ready: Promise.race([
          readyP,
          child.exited.then((code) => {
            throw new Error(`floor worker exited (${code}) before its clients were ready`);
          }),
        ]),
      });
    }
    await Promise.all(workers.map((w) => w.ready));
    log(`${n} connections greeted in ${round((performance.now() - t) / 1000, 1)} s`);
    await new Promise((r) => setTimeout(r, 3_000));
    const synced = await settledMemory(gc);
    figures.connections = n;
    figures.first_bytes = first.byteLength;
    figures.rss_per_conn_kib = round((synced.rss - idle.rss) / 1024 / n, 1);
    figures.native_per_conn_kib = round(
      (synced.rss - synced.heapTotal - (idle.rss - idle.heapTotal)) / 1024 / n,
      1,
    );
    figures.heap_per_conn_kib = round((synced.heapUsed - idle.heapUsed) / 1024 / n, 1);

    const cpu = async (): Promise<{ self: number; clients: number }> => {
      const u = process.cpuUsage();
      const c = await Promise.all(workers.map((w) => processCpuSeconds(w.child.pid)));
      return { self: (u.user + u.system) / 1e6, clients: c.reduce((a, b) => a + b, 0) };
    };
    const oneRound = async (r: number): Promise<number[]> => {
      latencies = [];
      answered = 0;
      round_ = r;
      const done = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`round ${r}: ${answered}/${n} answers`)),
          60_000,
        );
        roundDone = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      roundStart = performance.now();
      for (let i = 0; i < n; i++) {
        streams[i]!.write(push);
        if ((i + 1) % slice === 0 && i + 1 < n) await new Promise((res) => setImmediate(res));
      }
      await done;
      return latencies;
    };
    for (let r = 0; r < 3; r++) await oneRound(r);
    const rounds = opts.rounds ?? 20;
    const all: number[] = [];
    const c0 = await cpu();
    t = performance.now();
    for (let r = 3; r < 3 + rounds && !signal.aborted; r++) {
      all.push(...(await oneRound(r)));
      await new Promise((res) => setTimeout(res, 20));
    }
    const c1 = await cpu();
    figures.round_p50_ms = round(percentile(all, 50));
    figures.round_p99_ms = round(percentile(all, 99));
    figures.round_max_ms = round(Math.max(...all));
    figures.cpu_server_us_per_conn = round(((c1.self - c0.self) * 1e6) / rounds / n);
    figures.cpu_clients_us_per_conn = round(((c1.clients - c0.clients) * 1e6) / rounds / n);
    figures.machine_load_1m = round(loadavg()[0]!, 2);
    return figures;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((err: unknown) =>
        log(`cleanup failed: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }
}

export async function propagationFloorBench(json: boolean, argv: readonly string[]): Promise<void> {
  const n = numericOptions(argv, [
    'connections',
    'first-bytes',
    'first-part-bytes',
    'push-bytes',
    'answer-bytes',
    'rounds',
    'per-worker',
    'slice-size',
  ]);
  const interrupt = interruptSignal();
  try {
    const o: PropagationFloorOptions = {
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    };
    const set = <K extends keyof PropagationFloorOptions>(
      k: K,
      v: PropagationFloorOptions[K] | undefined,
    ): void => {
      if (v !== undefined) o[k] = v;
    };
    set('connections', n.connections);
    set('firstBytes', n['first-bytes']);
    set('firstPartBytes', n['first-part-bytes']);
    set('pushBytes', n['push-bytes']);
    set('answerBytes', n['answer-bytes']);
    set('rounds', n.rounds);
    set('perWorker', n['per-worker']);
    set('sliceSize', n['slice-size']);
    const f = await runPropagationFloor(o);
    const text = Object.entries(f)
      .map(([k, v]) => `  ${k.padEnd(26)} ${v}`)
      .join('\n');
    (json ? process.stderr : process.stdout).write(`propagation-floor\n${text}\n`);
    if (json)
      process.stdout.write(`${JSON.stringify({ bench: 'propagation-floor', figures: f })}\n`);
  } finally {
    interrupt.dispose();
  }
}
