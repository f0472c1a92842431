import { setTimeout as sleep } from 'node:timers/promises';
import type { ObservedFlow } from '../proto/index.js';
import { observeFlows } from './observe-client.js';
import type { MeshTarget } from './state-dir.js';

export interface ProbeTuple {
  srcIp: string;
  dstIp: string;
  dstPort: number;
  protocol: string;
}

/**
 * Follows the control plane's flows while `meshctl lab` probes, to find each
 * probe's verdict event: the drop if the datapath dropped it, else the
 * destination's ingress verdict (for a pod), else the source's egress one.
 * Not reentrant: one probe at a time.
 */
export class VerdictWatch {
  readonly #flows: ObservedFlow[] = [];
  readonly #stop = new AbortController();
  #failed: Error | undefined;

  private constructor() {}

  static start(target: MeshTarget, opts: { signal?: AbortSignal } = {}): Promise<VerdictWatch> {
    const w = new VerdictWatch();
    const signal = opts.signal ? AbortSignal.any([opts.signal, w.#stop.signal]) : w.#stop.signal;
    // Buffered flows too: nothing a probe causes can fall before the subscription.
    void (async () => {
      for await (const f of observeFlows(target, { follow: true }, { signal })) w.#flows.push(f);
    })().catch((err: unknown) => {
      w.#failed = err instanceof Error ? err : new Error(String(err));
    });
    return Promise.resolve(w);
  }

  /** Where the next probe's events start. */
  mark(): number {
    return this.#flows.length;
  }

  /** The probe's verdict event among flows seen since `mark`, waiting up to `waitMs` for it. */
  async verdictFor(
    mark: number,
    probe: ProbeTuple,
    opts: { destinationIsPod: boolean; waitMs?: number },
  ): Promise<ObservedFlow | undefined> {
    const end = Date.now() + (opts.waitMs ?? 3000);
    for (;;) {
      if (this.#failed !== undefined) throw this.#failed;
      const mine = this.#flows
        .slice(mark)
        .filter(
          (f) =>
            f.source?.ip === probe.srcIp &&
            f.destination?.ip === probe.dstIp &&
            f.destination.port === probe.dstPort &&
            f.protocol === probe.protocol,
        );
      const decided =
        mine.find((f) => f.verdict === 'DROPPED') ??
        (opts.destinationIsPod
          ? mine.find((f) => f.direction === 'ingress')
          : mine.find((f) => f.direction === 'egress'));
      if (decided) return decided;
      if (Date.now() > end) return mine[0];
      await sleep(50);
    }
  }

  stop(): void {
    this.#stop.abort();
  }
}
