import {
  ROOT_CONTEXT,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type SpanContext,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

/**
 * W3C trace context in explicit carriers (a NATS header set, gRPC metadata,
 * a map in a message): never the global propagator or context manager.
 */

/** The `traceparent`/`tracestate` entries for `ctx` (empty when it holds no span). */
export function injectTraceContext(ctx: Context): Record<string, string> {
  const carrier: Record<string, string> = {};
  new W3CTraceContextPropagator().inject(ctx, carrier, defaultTextMapSetter);
  return carrier;
}

/** A context whose remote parent is the span named by the carrier (ROOT_CONTEXT when none). */
export function extractTraceContext(carrier: Record<string, string | undefined>): Context {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(carrier)) if (v) clean[k] = v;
  return new W3CTraceContextPropagator().extract(ROOT_CONTEXT, clean, defaultTextMapGetter);
}

/** The span context a `traceparent` names, if it is valid. */
export function spanContextOf(traceparent: string): SpanContext | undefined {
  return trace.getSpanContext(extractTraceContext({ traceparent }));
}
