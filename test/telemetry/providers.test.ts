// Whether a process traces at all: spans are made only when something takes
// them (an OTLP collector or a given span processor). Without that, the
// control plane and agents leave tracing out: a span per node and push,
// made and dropped, was most of the control plane's telemetry CPU.
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { buildTelemetryProviders } from '../../common/telemetry/index.js';

describe('buildTelemetryProviders', () => {
  it('traces only when spans go somewhere', async () => {
    const none = buildTelemetryProviders({ serviceName: 't' });
    const given = buildTelemetryProviders({
      serviceName: 't',
      spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())],
    });
    // Nothing listens there: constructing the exporters sends nothing.
    const otlp = buildTelemetryProviders({ serviceName: 't', otlpUrl: 'http://127.0.0.1:9' });
    try {
      expect(none.exportingTracer('t')).toBeUndefined();
      expect(given.exportingTracer('t')).toBeDefined();
      expect(otlp.exportingTracer('t')).toBeDefined();
    } finally {
      await Promise.all([none.shutdown(), given.shutdown(), otlp.shutdown()]);
    }
  });
});
