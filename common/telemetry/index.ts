export { PrometheusEndpoint } from './prometheus-endpoint.js';
export {
  buildTelemetryProviders,
  LATENCY_BUCKETS_S,
  type TelemetryProviders,
  type TelemetryProviderOptions,
} from './providers.js';
export { injectTraceContext, extractTraceContext, spanContextOf } from './trace-context.js';
