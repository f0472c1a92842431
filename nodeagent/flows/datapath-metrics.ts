import type { Meter } from '@opentelemetry/api';
import type { CounterSample, KernelDigests } from '../datapath/ebpf/index.js';
import type { FlowReporterStats } from './flow-reporter.js';

/** The datapath's metric names (README "Metrics"), on the agent's --metrics-listen endpoint. */
export const DATAPATH_METRICS = {
  packets: 'meshplane_datapath_packets_total',
  bytes: 'meshplane_datapath_bytes_total',
  flowEventsRead: 'meshplane_agent_flow_events_read_total',
  flowEventsLost: 'meshplane_agent_flow_events_lost_total',
  kernelDigests: 'meshplane_datapath_kernel_digests_total',
} as const;

/** Where the kernel's counters come from (the eBPF datapath's `counters()`, `kernelDigests()`). */
export interface CounterSource {
  counters(): CounterSample[];
  kernelDigests(): KernelDigests;
}

const counterName = (n: string): string => n.replace(/_total$/, '');

/**
 * Registers the kernel's per-CPU packet/byte counters (summed over CPUs) by
 * direction, reason and verdict (forwarded | dropped | none for
 * `event-rate-limited`), read at each scrape, and the reporter's event
 * counts. Labels also carry `cluster` and `node`.
 */
export function registerDatapathMetrics(
  meter: Meter,
  source: CounterSource,
  reporter: { stats: FlowReporterStats } | undefined,
  who: { cluster: string; node: string },
): { close(): void } {
  const M = DATAPATH_METRICS;
  const attrs = { cluster: who.cluster, node: who.node };
  const packets = meter.createObservableCounter(counterName(M.packets), {
    description: 'packets the tc programs judged, by direction, reason and verdict',
  });
  const bytes = meter.createObservableCounter(counterName(M.bytes), {
    description: 'bytes of the packets the tc programs judged, by direction, reason and verdict',
  });
  const read = meter.createObservableCounter(counterName(M.flowEventsRead), {
    description: 'flow events read from the kernel ring buffer (within its rate limit)',
  });
  const lost = meter.createObservableCounter(counterName(M.flowEventsLost), {
    description: 'flow events dropped by the agent because the control plane was away or slow',
  });
  const digests = meter.createObservableCounter(counterName(M.kernelDigests), {
    description:
      'policy maps read by an in-kernel digest, after a write of the whole map (read="write") or by a verification (read="verify"): matched what the agent wrote, or mismatched / refused (then dumped)',
  });
  const observables = [packets, bytes, read, lost, digests];
  const collect: Parameters<Meter['addBatchObservableCallback']>[0] = (r) => {
    for (const c of source.counters()) {
      const labels = { ...attrs, direction: c.direction, reason: c.reason, verdict: c.verdict };
      r.observe(packets, Number(c.packets), labels);
      r.observe(bytes, Number(c.bytes), labels);
    }
    const kd = source.kernelDigests();
    for (const read of ['write', 'verify'] as const) {
      const d = kd[read];
      r.observe(digests, d.matched, { ...attrs, read, result: 'matched' });
      r.observe(digests, d.mismatched, { ...attrs, read, result: 'mismatched' });
      r.observe(digests, d.refused, { ...attrs, read, result: 'refused' });
    }
    if (reporter) {
      r.observe(read, reporter.stats.read, attrs);
      r.observe(lost, reporter.stats.lost, attrs);
    }
  };
  meter.addBatchObservableCallback(collect, observables);
  return { close: () => meter.removeBatchObservableCallback(collect, observables) };
}
