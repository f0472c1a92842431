import * as grpc from '@grpc/grpc-js';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { injectTraceMetadata } from '../common/trace-context/index.js';
import { CliExit } from './exit-codes.js';

/** What meshctl's commands trace with; built in the CLI's composition root (main.ts). */
export interface CliTelemetry {
  tracer: Tracer;
}

/**
 * Runs one command's admin calls under a CLIENT span named `name` (e.g.
 * `meshctl apply`): `fn` gets gRPC metadata carrying the span's W3C trace
 * context (`traceparent`, `tracestate`) to send with every call it makes, so
 * the control plane's span — and what the call causes: the change set's
 * revision, each agent's apply — is in this span's trace. The span ends when
 * `fn` settles; a failure (exit code ≠ 0) marks it as an error.
 */
export async function tracedCommand<T>(
  telemetry: CliTelemetry,
  name: string,
  attributes: Attributes,
  fn: (metadata: grpc.Metadata, span: Span) => Promise<T>,
): Promise<T> {
  const span = telemetry.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
  try {
    const metadata = injectTraceMetadata(trace.setSpan(ROOT_CONTEXT, span), new grpc.Metadata());
    const out = await fn(metadata, span);
    return out;
  } catch (err) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: err instanceof Error ? err.message : String(err),
    });
    if (err instanceof CliExit) span.setAttribute('meshctl.exit_code', err.exitCode);
    throw err;
  } finally {
    span.end();
  }
}

/** The trace id to quote to an operator, or undefined when the span is not sampled/valid. */
export function traceIdOf(span: Span): string | undefined {
  const sc = span.spanContext();
  return trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}
