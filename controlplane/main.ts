// Composition root of a control plane replica.
//   node --import tsx controlplane/main.ts --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]
//        [--dashboard-listen HOST:PORT|off]
//        (--tls-ca FILE --tls-cert FILE --tls-key FILE | --insecure)
//        [--metrics-listen HOST:PORT] [--metrics-per-node] [--otlp URL]
// --nats-creds: a JSON file {"user","pass"} (mode 0600, written by `meshctl up`),
// so the password never appears on a command line. mTLS is the default: plain
// text needs the explicit --insecure (local experiments only).
// --metrics-listen serves Prometheus metrics at http://HOST:PORT/metrics (port 0: any);
// per-node series only with --metrics-per-node; --otlp also pushes metrics and
// traces to an OTLP/HTTP collector. OTel providers are built here and passed in.
// --dashboard-listen: the live dashboard's HTTP server (default 127.0.0.1:0, any free
// port on loopback; it has no authentication), or `off`.
// Prints one JSON line on stdout when serving:
// {"event":"ready","address":"127.0.0.1:PORT","metrics":"http://…/metrics","dashboard":"http://…/"}
// (metrics only with --metrics-listen, dashboard '' when off).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MeshError, jsonLogger } from '../common/index.js';
import {
  buildTelemetryProviders,
  HistogramSet,
  PrometheusEndpoint,
} from '../common/telemetry/index.js';
import { readTlsMaterial, type TlsMaterial } from '../common/tls/index.js';
import { ControlPlane } from './control-plane.js';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string' },
    nats: { type: 'string' },
    'nats-creds': { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    'dashboard-listen': { type: 'string', default: '127.0.0.1:0' },
    'tls-ca': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    insecure: { type: 'boolean', default: false },
    'metrics-listen': { type: 'string' },
    'metrics-per-node': { type: 'boolean', default: false },
    otlp: { type: 'string' },
  },
});
const tlsFlags = [values['tls-ca'], values['tls-cert'], values['tls-key']];
const tlsComplete = tlsFlags.every((v) => v !== undefined && v !== '');
const tlsAny = tlsFlags.some((v) => v !== undefined);
if (!values.etcd || !values.nats || values.insecure === tlsAny || (tlsAny && !tlsComplete)) {
  process.stderr.write(
    [
      'usage: controlplane --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]',
      '                    [--dashboard-listen HOST:PORT|off]',
      '                    (--tls-ca FILE --tls-cert FILE --tls-key FILE | --insecure)',
      '                    [--metrics-listen HOST:PORT] [--metrics-per-node] [--otlp URL]',
      '  mTLS needs all three files; --insecure (plain text, no client checks) is for local experiments',
      '',
    ].join('\n'),
  );
  process.exit(2);
}
const log = jsonLogger({ component: 'controlplane' });

/** The user and password from a credentials file; errors name the file, never the password. */
async function readNatsAuth(file: string): Promise<{ user: string; pass: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new MeshError('VALIDATION', `cannot read NATS credentials ${file}`, { cause: err });
  }
  const { user, pass } = (raw ?? {}) as { user?: unknown; pass?: unknown };
  if (typeof user !== 'string' || typeof pass !== 'string' || user === '' || pass === '') {
    throw new MeshError('VALIDATION', `${file}: NATS credentials need a string user and pass`);
  }
  return { user, pass };
}

let natsAuth: { user: string; pass: string } | undefined;
let tls: TlsMaterial | 'insecure' = 'insecure';
try {
  natsAuth = values['nats-creds'] ? await readNatsAuth(values['nats-creds']) : undefined;
  if (tlsComplete) {
    tls = await readTlsMaterial({
      ca: values['tls-ca']!,
      cert: values['tls-cert']!,
      key: values['tls-key']!,
    });
  } else {
    log.warn('serving plain text (--insecure): any local process can fetch any snapshot');
  }
} catch (err) {
  log.error('control plane failed to start', {
    error: err instanceof Error ? err.message : String(err),
  });
  process.exit(2);
}
// The per-ACK latency histograms: kept outside the MeterProvider, collected by every reader.
const histograms = new HistogramSet('meshplane');
const prometheus = values['metrics-listen']
  ? new PrometheusEndpoint({ metricProducers: [histograms] })
  : undefined;
const providers = buildTelemetryProviders({
  serviceName: 'meshplane-controlplane',
  metricReaders: prometheus ? [prometheus.reader] : [],
  metricProducers: [histograms],
  ...(values.otlp ? { otlpUrl: values.otlp } : {}),
});
let metricsUrl: string | undefined;
try {
  if (prometheus && values['metrics-listen'])
    metricsUrl = await prometheus.listen(values['metrics-listen']);
} catch (err) {
  log.error('control plane failed to start', {
    error: err instanceof Error ? err.message : String(err),
  });
  process.exit(2);
}
const cp = new ControlPlane({
  etcdEndpoints: values.etcd.split(','),
  natsUrl: values.nats,
  ...(natsAuth ? { natsAuth } : {}),
  listen: values.listen,
  ...(values['dashboard-listen'] === 'off' ? {} : { dashboardListen: values['dashboard-listen'] }),
  tls,
  log,
  telemetry: {
    meter: providers.meterProvider.getMeter('meshplane'),
    histograms,
    tracer: providers.exportingTracer('meshplane'),
    perNodeMetrics: values['metrics-per-node'],
  },
});
const shutdownTelemetry = async (): Promise<void> => {
  await providers.shutdown();
  await prometheus?.close();
};
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void cp
    .stop()
    .then(shutdownTelemetry)
    .then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
try {
  const { address } = await cp.start();
  const metrics = metricsUrl ? { metrics: metricsUrl } : {};
  const dashboard = cp.dashboardUrl;
  process.stdout.write(`${JSON.stringify({ event: 'ready', address, ...metrics, dashboard })}\n`);
  log.info('control plane serving', { address, ...metrics, dashboard });
} catch (err) {
  log.error('control plane failed to start', {
    error: err instanceof Error ? err.message : String(err),
  });
  await cp.stop();
  await shutdownTelemetry();
  process.exit(1);
}
