import type { EbpfDatapath } from './ebpf-datapath.js';
import { findEndpointInterface, type Interface, type Netns } from './attach.js';

export interface AttacherEvents {
  attached?(endpoint: string, itf: Interface): void;
  failed?(endpoint: string, err: unknown): void;
}

/**
 * Keeps programs attached for every local endpoint: every `intervalMs` it
 * looks up each endpoint's interface (route to its address in the node's
 * namespace) and attaches where the interface is new or changed (a pod
 * recreated with a new veth). Endpoints whose interface does not exist yet
 * are retried on the next round; their maps are programmed meanwhile.
 * Never detaches: interfaces of removed pods disappear with their filters.
 */
export class EndpointAttacher {
  readonly #attached = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #abort = new AbortController();

  constructor(
    private readonly datapath: EbpfDatapath,
    private readonly opts: { netns?: Netns; intervalMs?: number } & AttacherEvents = {},
  ) {}

  start(): void {
    if (this.#timer !== undefined) return;
    const tick = (): void => {
      this.#running ??= this.reconcile().finally(() => (this.#running = undefined));
    };
    this.#timer = setInterval(tick, this.opts.intervalMs ?? 1000);
    tick();
  }

  /** One round: attach for every endpoint whose interface is new or changed. */
  async reconcile(): Promise<void> {
    const signal = this.#abort.signal;
    const present = new Set<string>();
    const netns = this.opts.netns !== undefined ? { netns: this.opts.netns } : {};
    for (const { endpoint, ips } of this.datapath.localEndpoints()) {
      present.add(endpoint);
      if (signal.aborted) return;
      try {
        let itf: Interface | undefined;
        for (const ip of ips) {
          itf = await findEndpointInterface(ip, { ...netns, signal });
          if (itf !== undefined) break;
        }
        if (itf === undefined || this.#attached.get(endpoint) === itf.ifindex) continue;
        this.datapath.attachInterface(itf.ifindex, netns);
        this.#attached.set(endpoint, itf.ifindex);
        this.opts.attached?.(endpoint, itf);
      } catch (err) {
        if (!signal.aborted) this.opts.failed?.(endpoint, err);
      }
    }
    for (const e of [...this.#attached.keys()]) if (!present.has(e)) this.#attached.delete(e);
  }

  /** The interfaces attached so far, by endpoint. */
  attached(): Map<string, number> {
    return new Map(this.#attached);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#running;
    this.#abort = new AbortController();
  }
}
