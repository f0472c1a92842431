import type { Meter } from '@opentelemetry/api';
import { LATENCY_BUCKETS_S } from '../../common/telemetry/index.js';
import type { NodeAgent } from '../client/index.js';

/** The agent's metric names (README "Metrics"); one endpoint per agent process. */
export const AGENT_METRICS = {
  apply: 'meshplane_apply_seconds',
  applied: 'meshplane_agent_revisions_applied_total',
  rejected: 'meshplane_agent_revisions_rejected_total',
  appliedRevision: 'meshplane_agent_applied_revision',
  connected: 'meshplane_agent_connected',
  disconnects: 'meshplane_agent_disconnects_total',
  verifications: 'meshplane_agent_verifications_total',
} as const;

const counterName = (n: string): string => n.replace(/_total$/, '');

/**
 * Registers the agent's metrics on `meter`, fed by the agent's events.
 * Labels: `cluster` and `node` (one series set per agent process).
 */
export function registerAgentMetrics(
  meter: Meter,
  agent: Pick<NodeAgent, 'on'>,
  who: { cluster: string; node: string },
): { close(): void } {
  const M = AGENT_METRICS;
  const attrs = { cluster: who.cluster, node: who.node };
  const apply = meter.createHistogram(M.apply, {
    description: 'receipt of the last part of a revision → state in the datapath (read back)',
    unit: 's',
    advice: { explicitBucketBoundaries: LATENCY_BUCKETS_S },
  });
  const applied = meter.createCounter(counterName(M.applied), {
    description: 'revisions applied and ACKed',
  });
  const rejected = meter.createCounter(counterName(M.rejected), {
    description: 'revisions NACKed (the agent stays on its last good state)',
  });
  const disconnects = meter.createCounter(counterName(M.disconnects), {
    description: 'stream attempts that ended',
  });
  const verifications = meter.createCounter(counterName(M.verifications), {
    description: 'full re-reads of the datapath, by result (match | mismatch)',
  });
  // Counters start at 0, so rules and dashboards find them before the first event.
  for (const c of [applied, rejected, disconnects]) c.add(0, attrs);
  for (const result of ['match', 'mismatch']) verifications.add(0, { ...attrs, result });
  let revision = 0;
  let connected = 0;
  const offs = [
    agent.on('revisionApplied', (e) => {
      revision = e.revision;
      apply.record(e.durationUs / 1e6, attrs);
      applied.add(1, attrs);
    }),
    agent.on('revisionRejected', () => rejected.add(1, attrs)),
    agent.on('connected', () => {
      connected = 1;
    }),
    agent.on('disconnected', () => {
      connected = 0;
      disconnects.add(1, attrs);
    }),
    agent.on('verified', (e) =>
      verifications.add(1, { ...attrs, result: e.matches ? 'match' : 'mismatch' }),
    ),
  ];
  const appliedRevision = meter.createObservableGauge(M.appliedRevision, {
    description: 'the mesh revision the datapath holds',
  });
  const connectedGauge = meter.createObservableGauge(M.connected, {
    description: '1 while a stream to the control plane is open',
  });
  const collect: Parameters<Meter['addBatchObservableCallback']>[0] = (r) => {
    r.observe(appliedRevision, revision, attrs);
    r.observe(connectedGauge, connected, attrs);
  };
  meter.addBatchObservableCallback(collect, [appliedRevision, connectedGauge]);
  return {
    close: () => {
      for (const off of offs) off();
      meter.removeBatchObservableCallback(collect, [appliedRevision, connectedGauge]);
    },
  };
}
