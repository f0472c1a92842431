import type { PushInfo } from '../xds/index.js';
import type { LatencySplit } from './latency.js';

/**
 * What the tracker announces, synchronously, as it happens. Metrics, traces
 * and the dashboard subscribe; none of them may throw or block.
 */
export type TrackerEvent =
  | {
      type: 'revision';
      revision: number;
      commitTime: number;
      /** W3C traceparents of the change sets committed at this revision */
      traceparents: readonly string[];
      /** per cluster: nodes whose snapshot changed */
      affected: ReadonlyMap<string, number>;
      /** per cluster: nodes not synced at it right after its commit (0 = absent) */
      target: ReadonlyMap<string, number>;
    }
  /** a revision dropped out of the window of recent revisions */
  | { type: 'revision-evicted'; revision: number }
  | { type: 'connection'; cluster: string; node: string; connected: boolean }
  | {
      type: 'push';
      cluster: string;
      node: string;
      push: PushInfo;
      /** the revisions in the window this push brings the node to (a coalesced push covers several) */
      covers: number[];
    }
  | {
      type: 'ack';
      cluster: string;
      node: string;
      revision: number;
      syncedRevision: number;
      applyMs: number;
      /** each revision in the window this ACK made the node synced at, with its latency split */
      covered: { revision: number; split: LatencySplit }[];
    }
  | { type: 'nack'; cluster: string; node: string; revision: number; message: string }
  | { type: 'diverged'; cluster: string; node: string; reported: string; expected: string }
  /** a verification report matched again after a divergence */
  | { type: 'verified'; cluster: string; node: string; digest: string }
  /** every node of `cluster` not synced at `revision` when it was committed now is */
  | { type: 'converged'; revision: number; cluster: string; at: number };
