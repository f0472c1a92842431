import { createServer, type Server } from 'node:http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import type { MetricProducer } from '@opentelemetry/sdk-metrics';
import { MeshError } from '../errors.js';

/**
 * A Prometheus scrape endpoint (`GET /metrics`) for one process. `reader`
 * goes into the process's MeterProvider; `listen` binds HOST:PORT (port 0:
 * any free port) and returns the URL to scrape. We run the HTTP server
 * ourselves so the bound port is known and the composition root owns it.
 * `metricProducers`: more metrics the reader collects besides the
 * MeterProvider's (e.g. a HistogramSet).
 */
export class PrometheusEndpoint {
  readonly reader: PrometheusExporter;
  #server: Server | undefined;
  #url = '';

  constructor(opts: { metricProducers?: MetricProducer[] } = {}) {
    this.reader = new PrometheusExporter({
      preventServerStart: true,
      withoutScopeInfo: true,
      ...(opts.metricProducers ? { metricProducers: opts.metricProducers } : {}),
    });
  }

  get url(): string {
    return this.#url;
  }

  async listen(hostPort: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    const i = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new MeshError('VALIDATION', `metrics address "${hostPort}" is not HOST:PORT`);
    }
    opts.signal?.throwIfAborted();
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method === 'GET' && path === '/metrics') {
        this.reader.getMetricsRequestHandler(req, res);
        return;
      }
      res.statusCode = 404;
      res.end('not found: metrics are at /metrics\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new MeshError('UNAVAILABLE', `cannot serve metrics on ${hostPort}`, { cause: err })),
      );
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
    const addr = server.address();
    const bound = typeof addr === 'object' && addr ? addr.port : port;
    const shownHost = host.includes(':') ? `[${host}]` : host;
    this.#url = `http://${shownHost}:${bound}/metrics`;
    return this.#url;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
