/**
 * The dashboard benchmark's fleet: N nodes emulated at the control plane's
 * xDS hooks, driving the real propagation tracker exactly as the xDS server
 * does (stream open, push, ACK, NACK) — no gRPC, no agent processes, so the
 * figures are the dashboard's own cost, not the fleet's. Each node keeps one
 * push in flight, as the real push queue does: a revision committed while a
 * push is out is coalesced into the next push, which then covers several.
 * Latencies come from a seeded generator, so runs are comparable.
 */
import type { Tracker } from '../controlplane/index.js';
import { seededRandom } from './lib/workload.js';

export interface FleetShape {
  /** nodes in the mesh, spread over `clusters` clusters */
  nodes: number;
  clusters: number;
  /** nodes affected by each change (every node: each change touches the mesh-wide ipcache) */
  affectedPerChange: number;
  /** nodes whose datapath refuses every change (they NACK and stay behind) */
  nacking: number;
  /** nodes that never connect */
  disconnected: number;
  /** commit → ACK: median and the spread of a log-normal distribution (ms) */
  latencyMedianMs: number;
  latencySigma: number;
  seed: number;
}

export const DEFAULT_FLEET: FleetShape = {
  nodes: 1_000,
  clusters: 3,
  affectedPerChange: 1_000,
  nacking: 3,
  disconnected: 2,
  latencyMedianMs: 120,
  latencySigma: 0.6,
  seed: 7,
};

interface EmulatedNode {
  cluster: string;
  node: string;
  key: string;
  /** revision of the push in flight; 0 = idle */
  inFlight: number;
  /** a newer revision affecting it arrived while a push was out */
  dirty: boolean;
  nacking: boolean;
  connected: boolean;
}

/**
 * Emulated nodes feeding `tracker`. `change()` commits one mesh revision
 * (the tracker's `onRevision`, then pushes to the affected idle nodes);
 * ACKs and NACKs arrive on timers. `stop()` cancels what is pending.
 */
export class EmulatedFleet {
  readonly shape: FleetShape;
  readonly #tracker: Tracker;
  readonly #nodes: EmulatedNode[];
  readonly #all: { cluster: string; node: string }[];
  readonly #random: () => number;
  readonly #timers = new Set<NodeJS.Timeout>();
  #revision = 0;
  #nonce = 0;
  #offset = 0;
  acks = 0;
  nacks = 0;

  constructor(tracker: Tracker, shape: FleetShape) {
    this.shape = shape;
    this.#tracker = tracker;
    this.#random = seededRandom(shape.seed);
    this.#nodes = Array.from({ length: shape.nodes }, (_, i) => {
      const c = i % shape.clusters;
      const cluster = ['eu', 'us', 'ap', 'sa', 'af'][c] ?? `c${c}`;
      const node = `${cluster}-${Math.floor(i / shape.clusters) + 1}`;
      return {
        cluster,
        node,
        key: `${cluster}/${node}`,
        inFlight: 0,
        dirty: false,
        nacking:
          i >= shape.nodes - shape.nacking - shape.disconnected &&
          i < shape.nodes - shape.disconnected,
        connected: i < shape.nodes - shape.disconnected,
      };
    });
    this.#all = this.#nodes.map(({ cluster, node }) => ({ cluster, node }));
  }

  get revision(): number {
    return this.#revision;
  }

  /** The first revision (every node affected) and every stream opening. */
  start(): void {
    this.#commit(this.#nodes);
    for (const n of this.#nodes) {
      if (!n.connected) continue;
      this.#tracker.onStreamOpen({ key: n.key, cluster: n.cluster, node: n.node });
      this.#push(n);
    }
  }

  /** One change set committed: a mesh revision affecting `affectedPerChange` nodes. */
  change(): void {
    const count = Math.min(this.shape.affectedPerChange, this.#nodes.length);
    const affected: EmulatedNode[] = [];
    for (let i = 0; i < count; i++)
      affected.push(this.#nodes[(this.#offset + i) % this.#nodes.length]!);
    this.#offset = (this.#offset + count) % this.#nodes.length;
    this.#commit(affected);
    for (const n of affected) {
      if (!n.connected) continue;
      if (n.inFlight !== 0) n.dirty = true;
      else this.#push(n);
    }
  }

  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #commit(affected: readonly EmulatedNode[]): void {
    this.#revision += 1;
    this.#tracker.onRevision(
      {
        revision: this.#revision,
        commitTime: Date.now(),
        affected: affected.map((n) => n.key),
        removed: [],
      },
      this.#all,
    );
  }

  #latencyMs(): number {
    // Box–Muller on the seeded generator: a log-normal commit → ACK time.
    const u = Math.max(1e-9, this.#random());
    const v = this.#random();
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    return this.shape.latencyMedianMs * Math.exp(this.shape.latencySigma * z);
  }

  #push(n: EmulatedNode): void {
    const revision = this.#revision;
    const nonce = String(++this.#nonce);
    const sentAt = Date.now();
    const id = { key: n.key, cluster: n.cluster, node: n.node };
    n.inFlight = revision;
    n.dirty = false;
    this.#tracker.onPush(id, { revision, nonce, resources: 3, removed: 0, bytes: 2_048, sentAt });
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      n.inFlight = 0;
      if (n.nacking) {
        this.nacks += 1;
        this.#tracker.onNack(id, {
          revision,
          nonce,
          message: 'endpoint table would hold 2 endpoints, capacity is 1',
          resourceNames: [`endpoint/${n.cluster}/shop/db-2`],
          heldRevision: 1,
        });
      } else {
        this.acks += 1;
        this.#tracker.onAck(id, {
          revision,
          nonce,
          applyDurationUs: 300 + Math.round(this.#random() * 2_000),
          digest: '',
          expectedDigest: '',
          current: !n.dirty,
          sentAt,
          receivedAt: Date.now(),
        });
      }
      // One push in flight: what arrived meanwhile goes out now, coalesced.
      if (n.dirty && !n.nacking) this.#push(n);
    }, this.#latencyMs());
    this.#timers.add(timer);
  }
}
