import type { Metadata } from '@grpc/grpc-js';
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { extractTraceMetadata, injectTraceContext } from '../../common/telemetry/index.js';

/** The server side of one traced admin call. */
export interface CallSpan {
  span: Span;
  /**
   * The W3C carrier (`traceparent`, `tracestate`) to send on with what the
   * call causes (e.g. the NATS request to a cluster's source), so it is in
   * the caller's trace: this span's context, or — when the control plane has
   * no tracer — the caller's own, passed through unchanged.
   */
  carrier: Record<string, string>;
  /** Ends the span; an error (or its message) marks it failed. Idempotent. */
  end(err?: Error | string): void;
}

/**
 * Starts the SERVER span of an admin call as the child of the caller's span,
 * whose context the caller put into the call's gRPC metadata (meshctl does
 * for every call that changes the mesh or waits for it). Without a tracer
 * nothing is recorded, but the caller's context still travels on.
 */
export function startCallSpan(
  tracer: Tracer | undefined,
  name: string,
  metadata: Metadata,
  attributes: Attributes = {},
): CallSpan {
  const parent = extractTraceMetadata(metadata);
  const span = tracer
    ? tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent)
    : trace.wrapSpanContext(trace.getSpanContext(parent) ?? INVALID_SPAN_CONTEXT);
  let ended = false;
  return {
    span,
    carrier: injectTraceContext(trace.setSpan(ROOT_CONTEXT, span)),
    end(err?: Error | string) {
      if (ended) return;
      ended = true;
      if (err !== undefined) {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: typeof err === 'string' ? err : err.message,
        });
      }
      span.end();
    },
  };
}
