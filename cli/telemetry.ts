import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { CliTelemetry } from './call-tracing.js';

/**
 * meshctl's tracer provider, built once by the composition root (main.ts)
 * and passed to the commands; nothing is registered globally. Spans are
 * exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` names an OTLP/HTTP
 * collector (base URL; traces go to `URL/v1/traces`, as the OTel convention
 * and the control plane's `--otlp` have it) — the exporter is loaded only
 * then, so a plain command does not pay for it. Without one, the commands'
 * trace context still goes with their admin calls.
 */
export async function buildCliTelemetry(
  env: Record<string, string | undefined>,
): Promise<CliTelemetry & { shutdown(): Promise<void> }> {
  const spanProcessors: SpanProcessor[] = [];
  const otlp = env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, '');
  if (otlp) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    spanProcessors.push(
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${otlp}/v1/traces` })),
    );
  }
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'meshctl' }),
    spanProcessors,
  });
  return {
    tracer: provider.getTracer('meshctl'),
    // Flushes what the command traced (a short-lived process must not drop it).
    shutdown: () => provider.shutdown(),
  };
}
