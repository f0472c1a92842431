import type { Tracer } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type IMetricReader,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';

export interface TelemetryProviders {
  meterProvider: MeterProvider;
  tracerProvider: BasicTracerProvider;
  /**
   * A tracer only when spans go somewhere (an OTLP exporter or a given span
   * processor); undefined otherwise, and callers leave tracing out: the
   * tracer provider would make every span and drop it, and spans per node
   * and revision cost the control plane real CPU (bench/RESULTS.md,
   * 2026-12-06 fifth session).
   */
  exportingTracer(name: string): Tracer | undefined;
  /** flushes and stops both providers (and their exporters) */
  shutdown(): Promise<void>;
}

export interface TelemetryProviderOptions {
  /** OTel service.name, e.g. meshplane-controlplane */
  serviceName: string;
  /** more resource attributes (e.g. meshplane.cluster, meshplane.node) */
  attributes?: Record<string, string>;
  /** metric readers, e.g. a PrometheusEndpoint's reader */
  metricReaders?: IMetricReader[];
  /** extra span processors (tests: a SimpleSpanProcessor over an InMemorySpanExporter) */
  spanProcessors?: SpanProcessor[];
  /** OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318): metrics and traces are also pushed there */
  otlpUrl?: string;
  /** more metrics the OTLP reader exports besides the MeterProvider's (give `metricReaders` the same) */
  metricProducers?: MetricProducer[];
}

/**
 * The OTel providers of one process, built in its composition root and
 * passed down explicitly: nothing is registered globally.
 */
export function buildTelemetryProviders(opts: TelemetryProviderOptions): TelemetryProviders {
  const resource = resourceFromAttributes({
    'service.name': opts.serviceName,
    ...(opts.attributes ?? {}),
  });
  const readers: IMetricReader[] = [...(opts.metricReaders ?? [])];
  const spanProcessors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  if (opts.otlpUrl) {
    const base = opts.otlpUrl.replace(/\/+$/, '');
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
        exportIntervalMillis: 10_000,
        ...(opts.metricProducers ? { metricProducers: opts.metricProducers } : {}),
      }),
    );
    spanProcessors.push(
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${base}/v1/traces` })),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });
  const tracerProvider = new BasicTracerProvider({ resource, spanProcessors });
  return {
    meterProvider,
    tracerProvider,
    exportingTracer: (name) =>
      spanProcessors.length > 0 ? tracerProvider.getTracer(name) : undefined,
    shutdown: async () => {
      await Promise.allSettled([meterProvider.shutdown(), tracerProvider.shutdown()]);
    },
  };
}

/** Histogram buckets for latencies, in seconds: 1 ms to 60 s. */
export const LATENCY_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];
