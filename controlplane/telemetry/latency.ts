/**
 * The latency split of DESIGN.md, pure arithmetic. Every time here is on the
 * clock of the replica serving the node, except `applyUs`, which the agent
 * measured on its own clock as a duration — two hosts' clocks are never
 * subtracted.
 */
export interface LatencySplit {
  /** commit of the revision → receipt of the ACK covering it */
  propagationMs: number;
  /** commit → send of the push (coalescing, computing, the one-in-flight wait) */
  queueMs: number;
  /** ACK receipt − send − apply: both directions on the wire plus the agent's receive path */
  transferMs: number;
  /** agent-reported receipt of the last part → state in the datapath */
  applyMs: number;
}

export function splitLatency(t: {
  commitTime: number;
  sentAt: number;
  receivedAt: number;
  applyUs: number;
}): LatencySplit {
  const applyMs = t.applyUs / 1000;
  const propagationMs = Math.max(0, t.receivedAt - t.commitTime);
  const queueMs = Math.max(0, t.sentAt - t.commitTime);
  // A millisecond clock against a microsecond duration: clamp, never negative.
  const transferMs = Math.max(0, t.receivedAt - t.sentAt - applyMs);
  return { propagationMs, queueMs, transferMs, applyMs };
}

/** Count, sum and maximum: enough for a mean and a worst case, O(1) per revision. */
export interface Moments {
  count: number;
  sum: number;
  max: number;
}

export function emptyMoments(): Moments {
  return { count: 0, sum: 0, max: 0 };
}

export function addMoment(m: Moments, v: number): void {
  m.count += 1;
  m.sum += v;
  if (v > m.max) m.max = v;
}
