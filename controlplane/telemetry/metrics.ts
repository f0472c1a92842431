import type { Meter } from '@opentelemetry/api';
import {
  LATENCY_BUCKETS_S,
  type HistogramSeries,
  type HistogramSet,
} from '../../common/telemetry/index.js';
import { NODE_STATES } from './node-state.js';
import type { Tracker } from './tracker.js';

/**
 * The control plane's propagation metrics, fed by the tracker's events
 * (histograms, counters) and read from it at collection time (gauges).
 * Names are a contract (README "Metrics", deploy/ dashboards and alerts).
 */
export const CONTROLPLANE_METRICS = {
  propagation: 'meshplane_propagation_seconds',
  queue: 'meshplane_propagation_queue_seconds',
  transfer: 'meshplane_propagation_transfer_seconds',
  apply: 'meshplane_propagation_apply_seconds',
  nodes: 'meshplane_nodes',
  oldestPending: 'meshplane_oldest_pending_seconds',
  latestRevision: 'meshplane_latest_revision',
  syncedRevision: 'meshplane_synced_revision',
  revisions: 'meshplane_revisions_total',
  nacks: 'meshplane_nacks_total',
  divergences: 'meshplane_divergences_total',
  pushes: 'meshplane_pushes_total',
  pushBytes: 'meshplane_push_bytes_total',
  nodeSynced: 'meshplane_node_synced_revision',
  nodeLag: 'meshplane_node_lag_seconds',
  nodeState: 'meshplane_node_state',
} as const;

/** OTel appends `_total` to counters itself. */
const counterName = (n: string): string => n.replace(/_total$/, '');

export interface PropagationMetricsOptions {
  /**
   * Where the per-ACK latency histograms are kept: a MetricProducer the
   * process's metric readers were built with (see HistogramSet).
   */
  histograms: HistogramSet;
  /** per-node series (synced revision, lag, state per node): off unless the user opts in */
  perNode?: boolean;
}

/** One cluster's series fed per event: its ACKs' four latency histograms, its pushes counted. */
interface ClusterSeries {
  propagation: HistogramSeries;
  queue: HistogramSeries;
  transfer: HistogramSeries;
  apply: HistogramSeries;
  /** read at collection (observable counters) */
  pushes: number;
  pushBytes: number;
}

/**
 * Registers the metrics on `meter` and `opts.histograms`; `close()` stops
 * feeding them. Work per node and change is a few additions: the latency
 * histograms are HistogramSet series held per cluster, and pushes are
 * counted in plain numbers read at collection, so no OTel attribute set is
 * hashed per push or ACK (that was most of the tracker's cost per ACK).
 */
export function registerPropagationMetrics(
  meter: Meter,
  tracker: Tracker,
  opts: PropagationMetricsOptions,
): { close(): void } {
  const M = CONTROLPLANE_METRICS;
  const seconds = (name: string, description: string) =>
    opts.histograms.histogram({ name, description, unit: 's', boundaries: LATENCY_BUCKETS_S });
  const propagation = seconds(M.propagation, 'commit of a revision → ACK covering it, per node');
  const queue = seconds(M.queue, 'commit → push sent (part of propagation)');
  const transfer = seconds(M.transfer, 'ACK receipt − send − apply (part of propagation)');
  const apply = seconds(M.apply, 'agent-reported receive → datapath (part of propagation)');
  const revisions = meter.createCounter(counterName(M.revisions), {
    description: 'mesh revisions (etcd revisions that changed some node snapshot)',
  });
  const nacks = meter.createCounter(counterName(M.nacks), { description: 'NACKed pushes' });
  const divergences = meter.createCounter(counterName(M.divergences), {
    description: 'times a node reported a digest other than the expected one',
  });
  const pushes = meter.createObservableCounter(counterName(M.pushes), {
    description: 'pushes sent',
  });
  const pushBytes = meter.createObservableCounter(counterName(M.pushBytes), {
    description: 'resource payload bytes pushed',
    unit: 'By',
  });

  // Every series starts at 0 per cluster, so rules and dashboards find them before the first event.
  const clusters = new Map<string, ClusterSeries>();
  const meet = (cluster: string): ClusterSeries => {
    let c = clusters.get(cluster);
    if (c !== undefined) return c;
    const a = { cluster };
    c = {
      propagation: propagation.series(a),
      queue: queue.series(a),
      transfer: transfer.series(a),
      apply: apply.series(a),
      pushes: 0,
      pushBytes: 0,
    };
    clusters.set(cluster, c);
    for (const counter of [nacks, divergences]) counter.add(0, a);
    return c;
  };
  revisions.add(0);
  const off = tracker.subscribe((e) => {
    switch (e.type) {
      case 'revision':
        revisions.add(1);
        for (const cluster of e.target.keys()) meet(cluster);
        for (const cluster of e.affected.keys()) meet(cluster);
        break;
      case 'push': {
        const c = meet(e.cluster);
        c.pushes += 1;
        c.pushBytes += e.push.bytes;
        break;
      }
      case 'ack': {
        const c = meet(e.cluster);
        for (const { split } of e.covered) {
          c.propagation.record(split.propagationMs / 1000);
          c.queue.record(split.queueMs / 1000);
          c.transfer.record(split.transferMs / 1000);
          c.apply.record(split.applyMs / 1000);
        }
        break;
      }
      case 'nack':
        meet(e.cluster);
        nacks.add(1, { cluster: e.cluster });
        break;
      case 'diverged':
        meet(e.cluster);
        divergences.add(1, { cluster: e.cluster });
        break;
      default:
        if ('cluster' in e) meet(e.cluster);
        break;
    }
  });
  const nodes = meter.createObservableGauge(M.nodes, { description: 'nodes by state' });
  const oldest = meter.createObservableGauge(M.oldestPending, {
    description:
      'lag of the most-behind node: now − commit of the oldest revision it has not synced',
    unit: 's',
  });
  const latest = meter.createObservableGauge(M.latestRevision, {
    description: 'latest mesh revision',
  });
  const synced = meter.createObservableGauge(M.syncedRevision, {
    description: 'lowest synced revision of the cluster’s nodes',
  });
  const observables = [pushes, pushBytes, nodes, oldest, latest, synced];
  const nodeSynced = opts.perNode
    ? meter.createObservableGauge(M.nodeSynced, { description: 'per node: synced revision' })
    : undefined;
  const nodeLag = opts.perNode
    ? meter.createObservableGauge(M.nodeLag, { description: 'per node: lag', unit: 's' })
    : undefined;
  const nodeState = opts.perNode
    ? meter.createObservableGauge(M.nodeState, {
        description: 'per node: 1 for its current state',
      })
    : undefined;
  if (nodeSynced && nodeLag && nodeState) observables.push(nodeSynced, nodeLag, nodeState);

  // The tracker keeps per-cluster counts: a collection reads them, it scans
  // nodes only for the opt-in per-node series.
  const collect: Parameters<Meter['addBatchObservableCallback']>[0] = (r) => {
    for (const [cluster, c] of clusters) {
      r.observe(pushes, c.pushes, { cluster });
      r.observe(pushBytes, c.pushBytes, { cluster });
    }
    const rev = tracker.latestRevision;
    for (const c of tracker.clusterCounts()) {
      for (const state of NODE_STATES)
        r.observe(nodes, c.states[state], { cluster: c.name, state });
      r.observe(oldest, c.ageMs / 1000, { cluster: c.name });
      r.observe(latest, rev, { cluster: c.name });
      r.observe(synced, c.syncedRevision, { cluster: c.name });
    }
    if (nodeSynced && nodeLag && nodeState) {
      for (const c of tracker.clusters()) {
        for (const n of c.nodes) {
          const a = { cluster: c.name, node: n.name };
          r.observe(nodeSynced, n.syncedRevision, a);
          r.observe(nodeLag, n.lagMs / 1000, a);
          r.observe(nodeState, 1, { ...a, state: n.state });
        }
      }
    }
  };
  meter.addBatchObservableCallback(collect, observables);
  return {
    close: () => {
      off();
      meter.removeBatchObservableCallback(collect, observables);
    },
  };
}
