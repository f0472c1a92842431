// HistogramSet (common/telemetry) keeps the control plane's per-ACK latency
// histograms out of the OTel SDK's per-record attribute hashing. What a
// scrape shows must not change: the same values recorded into an SDK
// Histogram and into a HistogramSet series give the same Prometheus lines,
// bucket by bucket (boundary values, values above the last boundary, zero,
// and the negative and NaN values the SDK drops).
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import {
  HistogramSet,
  LATENCY_BUCKETS_S,
  PrometheusEndpoint,
} from '../../common/telemetry/index.js';

const NAME = 'meshplane_test_latency_seconds';
const SPEC = {
  name: NAME,
  description: 'a test latency',
  unit: 's',
  boundaries: LATENCY_BUCKETS_S,
};

/** Values that exercise every edge: on a boundary, between, above the last, zero, dropped ones. */
const VALUES = [0, 0.001, 0.0011, 0.0025, 0.1, 0.1, 0.25, 7, 60, 61, 1e9, -1, Number.NaN, 0.003];

/** The lines of one metric family in a scrape. */
async function familyLines(url: string): Promise<string[]> {
  const text = await (await fetch(url)).text();
  return text.split('\n').filter((l) => l.includes(NAME));
}

describe('HistogramSet', () => {
  const endpoints: PrometheusEndpoint[] = [];
  afterEach(async () => {
    await Promise.all(endpoints.splice(0).map((e) => e.close()));
  });

  it('scrapes as the SDK histogram scrapes for the same records', async () => {
    const sdkEndpoint = new PrometheusEndpoint();
    const sdk = new MeterProvider({ readers: [sdkEndpoint.reader] })
      .getMeter('meshplane')
      .createHistogram(NAME, {
        description: SPEC.description,
        unit: SPEC.unit,
        advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
      });
    const set = new HistogramSet('meshplane');
    const setEndpoint = new PrometheusEndpoint({ metricProducers: [set] });
    new MeterProvider({ readers: [setEndpoint.reader] });
    const ours = set.histogram(SPEC);
    endpoints.push(sdkEndpoint, setEndpoint);

    for (const cluster of ['eu', 'us']) {
      const series = ours.series({ cluster });
      for (const v of VALUES) {
        const value = cluster === 'us' ? v * 3 : v;
        sdk.record(value, { cluster });
        series.record(value);
      }
    }
    const [a, b] = await Promise.all([
      familyLines(await sdkEndpoint.listen('127.0.0.1:0')),
      familyLines(await setEndpoint.listen('127.0.0.1:0')),
    ]);
    expect(a.filter((l) => l.startsWith(`${NAME}_count`))).toEqual([
      `${NAME}_count{cluster="eu"} 12`,
      `${NAME}_count{cluster="us"} 12`,
    ]);
    expect(b).toEqual(a);
  });

  it('exports a series from its creation, at 0, and one histogram per name', async () => {
    const set = new HistogramSet('meshplane');
    const endpoint = new PrometheusEndpoint({ metricProducers: [set] });
    new MeterProvider({ readers: [endpoint.reader] });
    endpoints.push(endpoint);
    set.histogram(SPEC).series({ cluster: 'eu' });
    expect(set.histogram(SPEC)).toBe(set.histogram({ ...SPEC }));
    expect(() => set.histogram({ ...SPEC, unit: 'ms' })).toThrow(/defined twice, differently/);
    const lines = await familyLines(await endpoint.listen('127.0.0.1:0'));
    expect(lines).toContain(`${NAME}_count{cluster="eu"} 0`);
    expect(lines).toContain(`${NAME}_bucket{cluster="eu",le="+Inf"} 0`);
  });
});
