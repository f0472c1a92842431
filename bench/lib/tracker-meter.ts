/**
 * The propagation tracker's cost, measured inside the control plane process
 * (issue 8's "CPU per 1,000 ACKs"): time spent inside the tracker's hooks —
 * onRevision, onPush, onAck, onNack — summed, with the number of ACKs they
 * handled. The hooks run synchronously on the event loop, so the time
 * between entering and leaving one is the tracker's own work (and its
 * synchronous subscribers'), CPU time unless the OS preempted the process
 * inside a hook (on a loaded machine that inflates it somewhat). Read with
 * the monotonic clock (performance.now, tens of ns): process.cpuUsage (a
 * getrusage syscall per call) cost more than the tracker itself.
 */

export interface TrackerCost {
  acks: number;
  /** microseconds inside the hooks */
  cpuUs: number;
}

/** The hooks measured; the tracker class lives in controlplane/telemetry. */
type Hook = 'onRevision' | 'onPush' | 'onAck' | 'onNack';

type Hooks = Partial<Record<Hook, (...args: never[]) => void>>;

/**
 * Wraps the hooks of `tracker` (an instance: the xDS server and the
 * revision feed call them through the instance, so the wrappers see every
 * call) and returns a reader of the totals so far.
 */
export function meterTracker(tracker: object): () => TrackerCost {
  const cost: TrackerCost = { acks: 0, cpuUs: 0 };
  const t = tracker as Hooks;
  for (const hook of ['onRevision', 'onPush', 'onAck', 'onNack'] as const) {
    const inner = t[hook];
    if (typeof inner !== 'function') continue;
    const bound = inner.bind(tracker) as (...args: unknown[]) => void;
    const wrapped = (...args: unknown[]): void => {
      const start = performance.now();
      try {
        bound(...args);
      } finally {
        cost.cpuUs += (performance.now() - start) * 1000;
        if (hook === 'onAck') cost.acks += 1;
      }
    };
    Object.defineProperty(tracker, hook, { value: wrapped, configurable: true, writable: true });
  }
  return () => ({ ...cost });
}
