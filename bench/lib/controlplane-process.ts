// A control plane replica in its own process, for the propagation benchmark:
//   node --expose-gc --import tsx bench/lib/controlplane-process.ts \
//        --etcd URL --nats URL --tls-ca F --tls-cert F --tls-key F
// The same ControlPlane class controlplane/main.ts wires, with mTLS and its
// telemetry as `meshctl up --metrics` runs it: a meter with a Prometheus
// reader (metrics recorded as served, the endpoint not listening); no
// tracer, as without --otlp. Prints
// {"event":"ready","address":"127.0.0.1:PORT"} when serving. Each line
// "memory" on stdin is answered with one JSON line on stdout, after two full
// garbage collections (needs --expose-gc): {"event":"memory","rss":B,
// "heapUsed":B,"heapTotal":B,"external":B,"fds":N} (fds: open file descriptors, i.e. the
// agents' connections). Each line "tracker" is answered with the tracker's
// cost so far (bench/lib/tracker-meter.ts): {"event":"tracker","acks":N,
// "cpuUs":U}. SIGTERM stops it.
import { readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { jsonLogger, type Logger } from '../../common/index.js';
import {
  buildTelemetryProviders,
  HistogramSet,
  PrometheusEndpoint,
} from '../../common/telemetry/index.js';
import { readTlsMaterial } from '../../common/tls/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { meterTracker } from './tracker-meter.js';

function warningsOnly(): Logger {
  const inner = jsonLogger({ component: 'controlplane' });
  const l: Logger = {
    info: () => undefined,
    warn: (m, f) => inner.warn(m, f),
    error: (m, f) => inner.error(m, f),
    child: () => l,
  };
  return l;
}

async function memory(): Promise<Record<string, number>> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    // What the process does after a full GC happens on later turns of the
    // event loop (GC observers; the xDS server trims the heap after the first
    // full GC that follows connection churn): read RSS once that has run.
    await new Promise((r) => setTimeout(r, 250));
  }
  const m = process.memoryUsage();
  const fds = (await readdir('/proc/self/fd').catch(() => [])).length;
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    fds,
    gc: gc ? 1 : 0,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      etcd: { type: 'string' },
      nats: { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
    },
    strict: true,
  });
  const { etcd, nats } = values;
  const [ca, cert, key] = [values['tls-ca'], values['tls-cert'], values['tls-key']];
  if (!etcd || !nats || !ca || !cert || !key) {
    process.stderr.write(
      'usage: controlplane-process.ts --etcd URL --nats URL --tls-ca F --tls-cert F --tls-key F\n',
    );
    return 2;
  }
  const histograms = new HistogramSet('meshplane');
  const prometheus = new PrometheusEndpoint({ metricProducers: [histograms] });
  const providers = buildTelemetryProviders({
    serviceName: 'meshplane-controlplane',
    metricReaders: [prometheus.reader],
  });
  const cp = new ControlPlane({
    etcdEndpoints: [etcd],
    natsUrl: nats,
    listen: '127.0.0.1:0',
    tls: await readTlsMaterial({ ca, cert, key }),
    log: warningsOnly(),
    telemetry: {
      meter: providers.meterProvider.getMeter('meshplane'),
      histograms,
      tracer: providers.exportingTracer('meshplane'),
    },
  });
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const { address } = await cp.start();
  // Before any agent connects: every ACK goes through the meter.
  const trackerCost = cp.tracker ? meterTracker(cp.tracker) : undefined;
  process.stdout.write(`${JSON.stringify({ event: 'ready', address })}\n`);
  const reply = (o: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = line.trim();
    if (command === 'memory') void memory().then((m) => reply({ event: 'memory', ...m }));
    else if (command === 'tracker')
      reply({ event: 'tracker', ...(trackerCost?.() ?? { acks: 0, cpuUs: 0 }) });
  });
  await stopped;
  await cp.stop();
  await providers.shutdown();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `controlplane-process: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exit(1);
  },
);
