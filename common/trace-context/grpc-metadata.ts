import type { Metadata } from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import { extractTraceContext, injectTraceContext } from './trace-context.js';

/**
 * W3C trace context in gRPC call metadata (`traceparent`, `tracestate`),
 * explicitly: a client puts its span's context into the metadata of the call
 * it makes, the server takes it out and starts its span as the child.
 */

/** Sets `traceparent` (and `tracestate`) of `ctx` on `metadata`; returns `metadata`. */
export function injectTraceMetadata(ctx: Context, metadata: Metadata): Metadata {
  for (const [key, value] of Object.entries(injectTraceContext(ctx))) metadata.set(key, value);
  return metadata;
}

/** The caller's context from a call's metadata (ROOT_CONTEXT when it sent none or an invalid one). */
export function extractTraceMetadata(metadata: Metadata): Context {
  const first = (key: string): string | undefined => {
    const v = metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  };
  return extractTraceContext({
    traceparent: first('traceparent'),
    tracestate: first('tracestate'),
  });
}
