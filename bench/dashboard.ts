/**
 * `npm run bench -- dashboard [--json] [--nodes N] [--rate C] [--affected A] [--seconds S] [--seed S]`
 *
 * The live dashboard's cost with a large mesh under steady change: N nodes
 * (default 1,000, 3 clusters) emulated at the xDS hooks of the real
 * propagation tracker (bench/dashboard-fleet.ts: one push in flight per node,
 * log-normal commit → ACK around 120 ms, 3 nodes NACKing, 2 never connected),
 * C changes per second (default 10), each a mesh revision affecting A nodes
 * (default all: the worst case, every node's row changes twice per revision).
 * The real dashboard (feed, SSE server, page) serves it; measured over S
 * seconds (default 30) after a 5 s warm-up:
 *   - update payload: bytes per second on one SSE stream, read by a plain
 *     HTTP client (the page's own stream carries the same bytes);
 *   - render time per update in Debian's chromium (headless, playwright-core):
 *     the page's 'dashboard-render' performance measures (apply the delta,
 *     update the DOM, style and layout; paint excluded).
 */
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { chromium } from 'playwright-core';
import { silentLogger, systemClock } from '../common/index.js';
import { Dashboard } from '../controlplane/dashboard/index.js';
import { Tracker } from '../controlplane/telemetry/index.js';
import { DEFAULT_FLEET, EmulatedFleet, type FleetShape } from './dashboard-fleet.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';
import { percentile, round } from './lib/stats.js';

export interface DashboardBenchOptions {
  fleet?: Partial<FleetShape>;
  /** changes (mesh revisions) per second (default 10) */
  rate?: number;
  /** measured window (default 30 s), after `warmupSeconds` (default 5 s) */
  seconds?: number;
  warmupSeconds?: number;
  chromium?: string;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface DashboardBenchResult {
  shape: FleetShape;
  figures: Record<string, number>;
}

/** Counts what one SSE client receives: bytes and `delta` events. */
function sseCounter(url: string): {
  bytes: () => number;
  deltas: () => number;
  firstStateBytes: Promise<number>;
  close: () => void;
} {
  let bytes = 0;
  let deltas = 0;
  let resolveState: (n: number) => void = () => undefined;
  const firstStateBytes = new Promise<number>((r) => (resolveState = r));
  let pending = '';
  const req = request(`${url}api/events`, (res) => {
    res.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      pending += chunk.toString('utf8');
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const frame = pending.slice(0, end + 2);
        pending = pending.slice(end + 2);
        if (frame.includes('event: state')) resolveState(Buffer.byteLength(frame));
        else if (frame.includes('event: delta')) deltas += 1;
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return { bytes: () => bytes, deltas: () => deltas, firstStateBytes, close: () => req.destroy() };
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });

export async function runDashboardBench(
  opts: DashboardBenchOptions = {},
): Promise<DashboardBenchResult> {
  const shape: FleetShape = { ...DEFAULT_FLEET, ...opts.fleet };
  shape.affectedPerChange = Math.min(shape.affectedPerChange, shape.nodes);
  const rate = opts.rate ?? 10;
  const seconds = opts.seconds ?? 30;
  const warmup = opts.warmupSeconds ?? 5;
  const log = opts.log ?? (() => undefined);
  const tracker = new Tracker({ clock: systemClock });
  const fleet = new EmulatedFleet(tracker, shape);
  const dashboard = new Dashboard({
    tracker,
    clock: systemClock,
    log: silentLogger(),
    listen: '127.0.0.1:0',
  });
  const { url } = await dashboard.start(opts.signal ? { signal: opts.signal } : {});
  const browser = await chromium.launch({
    executablePath: opts.chromium ?? '/usr/bin/chromium',
    headless: true,
    args: [
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  let ticker: NodeJS.Timeout | undefined;
  const counter = sseCounter(url);
  try {
    fleet.start();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Main-thread CPU time (thread ticks), which a loaded machine does not inflate as it does wall time.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable', { timeDomain: 'threadTicks' });
    const mainThread = async (): Promise<Record<string, number>> => {
      const { metrics } = await cdp.send('Performance.getMetrics');
      return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
    };
    await page.goto(url);
    await page.waitForSelector('[data-testid="connection"].live', { timeout: 60_000 });
    log(`dashboard: ${shape.nodes} nodes, ${rate} changes/s; page live at ${url}`);
    // Changes on a schedule, not a bare interval: a loaded event loop catches up
    // instead of silently offering less (or, by its stale clock, more).
    const t0 = performance.now();
    let offered = 0;
    ticker = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) * rate) / 1000);
      for (; offered < due; offered++) fleet.change();
    }, 10);
    await sleep(warmup * 1000, opts.signal);
    await page.evaluate(() => performance.clearMeasures('dashboard-render'));
    const start = {
      at: performance.now(),
      bytes: counter.bytes(),
      deltas: counter.deltas(),
      revision: fleet.revision,
      acks: fleet.acks,
      cpu: process.cpuUsage(),
      page: await mainThread(),
    };
    log(`dashboard: measuring for ${seconds} s`);
    await sleep(seconds * 1000, opts.signal);
    const elapsedS = (performance.now() - start.at) / 1000;
    const cpu = process.cpuUsage(start.cpu);
    const pageEnd = await mainThread();
    const pageCpu = (name: string): number => (pageEnd[name] ?? 0) - (start.page[name] ?? 0);
    const renders = await page.evaluate(() =>
      performance.getEntriesByName('dashboard-render').map((e) => e.duration),
    );
    const bytes = counter.bytes() - start.bytes;
    const deltas = counter.deltas() - start.deltas;
    const shown = Number(await page.textContent('[data-testid="mesh-revision"]'));
    const figures: Record<string, number> = {
      nodes: shape.nodes,
      changes_per_s: round((fleet.revision - start.revision) / elapsedS, 1),
      acks_per_s: round((fleet.acks - start.acks) / elapsedS, 0),
      update_bytes_per_s: round(bytes / elapsedS, 0),
      updates_per_s: round(deltas / elapsedS, 2),
      update_bytes_mean: deltas > 0 ? round(bytes / deltas, 0) : 0,
      state_bytes: await counter.firstStateBytes,
      render_p50_ms: round(percentile(renders, 50), 2),
      render_p99_ms: round(percentile(renders, 99), 2),
      render_max_ms: round(Math.max(...renders), 2),
      // the page's main thread CPU (every task: SSE parsing, script, style, layout) per update
      page_cpu_per_update_ms: deltas > 0 ? round((pageCpu('TaskDuration') * 1000) / deltas, 2) : 0,
      page_script_per_update_ms:
        deltas > 0 ? round((pageCpu('ScriptDuration') * 1000) / deltas, 2) : 0,
      page_style_layout_per_update_ms:
        deltas > 0
          ? round(((pageCpu('RecalcStyleDuration') + pageCpu('LayoutDuration')) * 1000) / deltas, 2)
          : 0,
      page_cpu_share: round(pageCpu('TaskDuration') / elapsedS, 3),
      renders: renders.length,
      // tracker + feed + server + emulated fleet, in this process (the page runs in chromium)
      server_cpu_share: round((cpu.user + cpu.system) / 1e6 / elapsedS, 3),
      page_revision_lag: fleet.revision - shown,
      machine_load_1m: round(loadavg()[0] ?? 0, 1),
    };
    return { shape, figures };
  } finally {
    if (ticker) clearInterval(ticker);
    fleet.stop();
    counter.close();
    await browser.close();
    await dashboard.stop();
  }
}

export async function dashboardBench(json: boolean, argv: readonly string[]): Promise<void> {
  const o = numericOptions(argv, ['nodes', 'rate', 'affected', 'seconds', 'seed']);
  const interrupt = interruptSignal();
  try {
    const nodes = o.nodes !== undefined ? Math.round(o.nodes) : DEFAULT_FLEET.nodes;
    const result = await runDashboardBench({
      fleet: {
        nodes,
        affectedPerChange: o.affected !== undefined ? Math.round(o.affected) : nodes,
        ...(o.seed !== undefined ? { seed: Math.round(o.seed) } : {}),
      },
      ...(o.rate !== undefined ? { rate: o.rate } : {}),
      ...(o.seconds !== undefined ? { seconds: o.seconds } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    });
    const f = result.figures;
    const s = result.shape;
    const lines = [
      `dashboard: ${s.nodes} nodes in ${s.clusters} clusters emulated at the tracker's xDS hooks ` +
        `(${s.nacking} NACKing, ${s.disconnected} never connected; commit → ACK log-normal, median ` +
        `${s.latencyMedianMs} ms; seed ${s.seed}), each change affecting ${s.affectedPerChange} nodes`,
      `  offered / achieved           ${f.changes_per_s} changes/s, ${f.acks_per_s} ACKs/s`,
      `  update payload (one SSE)     ${f.update_bytes_per_s} B/s in ${f.updates_per_s} updates/s ` +
        `(mean ${f.update_bytes_mean} B); first full state ${f.state_bytes} B`,
      `  render per update (chromium) p50 ${f.render_p50_ms} ms, p99 ${f.render_p99_ms} ms, ` +
        `max ${f.render_max_ms} ms over ${f.renders} updates (apply + DOM + style/layout; wall time)`,
      `  page main thread CPU         ${f.page_cpu_per_update_ms} ms per update (script ${f.page_script_per_update_ms}, ` +
        `style + layout ${f.page_style_layout_per_update_ms}); ${round(f.page_cpu_share! * 100, 1)}% of a core`,
      `  this process (tracker, feed, server, fleet) ${round(f.server_cpu_share! * 100, 1)}% of a core; ` +
        `page ${f.page_revision_lag} revisions behind at the end; machine load ${f.machine_load_1m} (2 cores)`,
    ];
    (json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
    if (json) process.stdout.write(`${JSON.stringify({ bench: 'dashboard', figures: f })}\n`);
  } finally {
    interrupt.dispose();
  }
}
