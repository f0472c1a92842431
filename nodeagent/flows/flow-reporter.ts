import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshFlowsClient, type FlowRecord, type FlowReport } from '../../proto/index.js';
import { Backoff, type BackoffOptions, type Logger } from '../client/index.js';
import type { FlowEvent } from '../datapath/ebpf/index.js';

/** Where flow events come from (the eBPF datapath's `events()`); owned by the caller. */
export interface FlowSource {
  events(opts: { signal?: AbortSignal }): AsyncIterable<FlowEvent>;
}

export interface FlowReporterOptions {
  source: FlowSource;
  /** control plane HOST:PORT */
  server: string;
  credentials: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  node: { cluster: string; id: string };
  logger: Logger;
  /** a report goes out at most this often (default 200 ms) */
  intervalMs?: number;
  /** records per report (default 500) */
  maxBatch?: number;
  /** events held while the control plane is away or slow; beyond it the oldest are lost (default 10,000) */
  maxQueued?: number;
  backoff?: BackoffOptions;
}

/** What the reporter did since it started (read by the agent's metrics). */
export interface FlowReporterStats {
  /** events read from the datapath */
  read: number;
  /** records the control plane received on a stream that ended well or is open */
  sent: number;
  /** events dropped because the queue was full */
  lost: number;
}

export function flowRecordOf(e: FlowEvent): FlowRecord {
  return {
    timeUnixMs: e.time.getTime(),
    endpoint: e.endpoint ?? '',
    endpointIdentity: e.endpointIdentity,
    direction: e.direction,
    verdict: e.verdict,
    policyVerdict: e.policyVerdict,
    reason: e.reason,
    srcIdentity: e.srcIdentity,
    dstIdentity: e.dstIdentity,
    srcIp: e.srcIp,
    dstIp: e.dstIp,
    protocol: e.protocol,
    srcPort: e.srcPort,
    dstPort: e.dstPort,
  };
}

/**
 * Carries the datapath's flow events to the control plane over one
 * MeshFlows.ReportFlows stream, in batches, reconnecting with backoff. Memory
 * is bounded: while the control plane is away at most `maxQueued` events wait
 * and older ones are counted as lost (and reported as such). The kernel's
 * event rate limit bounds how fast events arrive in the first place.
 */
export class FlowReporter {
  readonly #opts: FlowReporterOptions;
  readonly #queue: FlowRecord[] = [];
  readonly #abort = new AbortController();
  #unreported = 0;
  #tasks: Promise<void>[] = [];
  readonly stats: FlowReporterStats = { read: 0, sent: 0, lost: 0 };

  constructor(opts: FlowReporterOptions) {
    this.#opts = opts;
  }

  /** Starts reading and reporting; returns at once. */
  start(): void {
    const client = new MeshFlowsClient(this.#opts.server, this.#opts.credentials, {
      'grpc.initial_reconnect_backoff_ms': this.#opts.backoff?.initialMs ?? 100,
      'grpc.max_reconnect_backoff_ms': this.#opts.backoff?.maxMs ?? 5_000,
      ...this.#opts.channelOptions,
    });
    const signal = this.#abort.signal;
    this.#tasks = [this.#read(signal), this.#send(client, signal).finally(() => client.close())];
  }

  /** Stops reading and closes the stream (events not yet sent are dropped). Idempotent. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled(this.#tasks);
  }

  async #read(signal: AbortSignal): Promise<void> {
    const max = this.#opts.maxQueued ?? 10_000;
    try {
      for await (const e of this.#opts.source.events({ signal })) {
        this.stats.read += 1;
        if (this.#queue.length >= max) {
          // Drop in chunks so a long outage costs O(1) per event.
          const n = Math.max(1, Math.floor(max / 10));
          this.#queue.splice(0, n);
          this.stats.lost += n;
          this.#unreported += n;
        }
        this.#queue.push(flowRecordOf(e));
      }
    } catch (err) {
      if (!signal.aborted)
        this.#opts.logger.error('reading flow events failed', { error: String(err) });
    }
  }

  async #send(client: MeshFlowsClient, signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(this.#opts.backoff);
    const interval = this.#opts.intervalMs ?? 200;
    const maxBatch = this.#opts.maxBatch ?? 500;
    while (!signal.aborted) {
      let ended: (err: grpc.ServiceError | null) => void = () => undefined;
      const done = new Promise<grpc.ServiceError | null>((resolve) => (ended = resolve));
      const call = client.reportFlows((err) => ended(err));
      call.on('error', () => undefined); // reported through the callback
      const onAbort = (): void => call.cancel();
      signal.addEventListener('abort', onAbort, { once: true });
      let open = true;
      void done.then(() => (open = false));
      call.write({
        node: { id: this.#opts.node.id, cluster: this.#opts.node.cluster },
        flows: [],
        lost: 0,
      } satisfies FlowReport);
      while (open && !signal.aborted) {
        await Promise.race([sleep(interval, undefined, { signal }).catch(() => undefined), done]);
        if (!open || signal.aborted) break;
        while (this.#queue.length > 0 || this.#unreported > 0) {
          const flows = this.#queue.splice(0, maxBatch);
          const lost = this.#unreported;
          this.#unreported = 0;
          const drained = call.write({ node: undefined, flows, lost } satisfies FlowReport);
          this.stats.sent += flows.length;
          backoff.reset();
          if (!drained) {
            await Promise.race([new Promise((r) => call.once('drain', r)), done]);
            if (!open) break;
          }
        }
      }
      signal.removeEventListener('abort', onAbort);
      const err = await done;
      if (signal.aborted) return;
      this.#opts.logger.warn('flow stream ended; reconnecting', {
        error: err ? `${err.code}: ${err.details}` : 'closed by the control plane',
      });
      await sleep(backoff.next(), undefined, { signal }).catch(() => undefined);
    }
  }
}
