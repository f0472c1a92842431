/**
 * The running mesh the propagation benchmark drives: change sets go in
 * through JetStream as a cluster source publishes them; what the control
 * plane knows comes out of its admin Status API (mTLS, admin certificate),
 * exactly what `meshctl status` shows.
 */
import * as grpc from '@grpc/grpc-js';
import { connect, type JetStreamClient, type NatsConnection } from 'nats';
import type { ChangeSetEvent, SourceHealthEvent } from '../../common/index.js';
import { clientTransport, readTlsMaterial, type TlsFiles } from '../../common/tls/index.js';
import {
  MeshAdminClient,
  type JoinClusterResponse,
  type SkewResponse,
  type StatusResponse,
} from '../../proto/index.js';
import { syncView, type SyncView } from './ack-latency.js';

export class BenchMesh {
  readonly #admin: MeshAdminClient;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #clusters = new Set<string>();

  private constructor(admin: MeshAdminClient, nc: NatsConnection) {
    this.#admin = admin;
    this.#nc = nc;
    this.#js = nc.jetstream();
    // Health keeps each cluster's source lease, as a running source would.
    this.#heartbeat = setInterval(() => {
      for (const cluster of this.#clusters) {
        const h: SourceHealthEvent = {
          apiVersion: 'meshplane/v1',
          cluster,
          origin: 'bench:propagation',
          at: Date.now(),
          lastError: '',
        };
        nc.publish(`meshplane.health.${cluster}`, JSON.stringify(h));
      }
    }, 1_000);
  }

  static async connect(address: string, natsUrl: string, admin: TlsFiles): Promise<BenchMesh> {
    const t = clientTransport(await readTlsMaterial(admin));
    const client = new MeshAdminClient(address, t.credentials, t.options);
    const nc = await connect({ servers: natsUrl, name: 'bench-propagation' });
    return new BenchMesh(client, nc);
  }

  async join(name: string, id: number): Promise<void> {
    await new Promise<JoinClusterResponse>((resolve, reject) =>
      this.#admin.joinCluster(
        { name, id },
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
    this.#clusters.add(name);
  }

  /** Resolves once JetStream has stored the change set (PubAck). */
  async publish(ev: ChangeSetEvent): Promise<void> {
    await this.#js.publish(`meshplane.events.${ev.cluster.name}`, JSON.stringify(ev));
  }

  /** The tracker's per-revision aggregates (what `meshctl skew --json` shows). */
  skew(): Promise<SkewResponse> {
    return new Promise((resolve, reject) =>
      this.#admin.skew({}, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  status(): Promise<StatusResponse> {
    return new Promise((resolve, reject) =>
      this.#admin.status({}, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  }

  /**
   * Polls Status every `intervalMs` until `done` holds for it; on abort
   * throws naming `what` and what was still behind. The latencies come from
   * the control plane's timestamps, so polling only costs: at 200 ms, the
   * Status calls (every node's state, built and encoded) were ~18% of the
   * control plane's CPU during scenario (a) at 300 agents. `firstPollMs`
   * delays the first call: a poll right after a publish lands between the
   * commit and the pushes, on the path being measured (~10–15 ms of the
   * control plane's CPU at 1,000 nodes).
   */
  async until(
    done: (v: SyncView, s: StatusResponse) => boolean,
    what: string,
    signal: AbortSignal,
    { intervalMs = 500, firstPollMs = 0 }: { intervalMs?: number; firstPollMs?: number } = {},
  ): Promise<StatusResponse> {
    let last: SyncView | undefined;
    if (firstPollMs > 0) await new Promise((r) => setTimeout(r, firstPollMs));
    for (;;) {
      const s = await this.status();
      last = syncView(s);
      if (done(last, s)) return s;
      if (signal.aborted) {
        const behind = last.behind;
        throw new Error(
          `timed out waiting for ${what}: revision ${last.revision}, ${last.endpoints} endpoints, ` +
            `${behind.length} of ${last.nodes} nodes behind (${behind.slice(0, 5).join(', ')})`,
          { cause: signal.reason },
        );
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    this.#admin.close();
    await this.#nc.close();
  }
}
