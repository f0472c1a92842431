// W3C trace context in explicit carriers, without the OpenTelemetry SDK or
// exporters (so a short-lived process like meshctl loads only what it needs).
export { injectTraceContext, extractTraceContext, spanContextOf } from './trace-context.js';
export { injectTraceMetadata, extractTraceMetadata } from './grpc-metadata.js';
