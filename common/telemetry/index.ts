export { PrometheusEndpoint } from './prometheus-endpoint.js';
export {
  HistogramSet,
  HistogramInstrument,
  HistogramSeries,
  type HistogramSpec,
} from './histogram-set.js';
export {
  buildTelemetryProviders,
  LATENCY_BUCKETS_S,
  type TelemetryProviders,
  type TelemetryProviderOptions,
} from './providers.js';
export {
  injectTraceContext,
  extractTraceContext,
  spanContextOf,
  injectTraceMetadata,
  extractTraceMetadata,
} from '../trace-context/index.js';
