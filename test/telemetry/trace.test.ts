// Traces across the whole path on real etcd, NATS and gRPC: a source event's
// W3C trace context rides in its NATS header, the control plane's revision
// span is its child, the push carries the context to the agent, and the
// agent's apply span has the source event's trace id; a push that covers
// several revisions (the node was still applying an earlier one) links to
// each. An in-memory span exporter on each side.
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { NatsConnection } from 'nats';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, TRACE_LINKS_HEADER, TRACEPARENT_HEADER } from '../../common/index.js';
import { injectTraceContext } from '../../common/telemetry/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import {
  EmulatedDatapath,
  NodeAgent,
  type Datapath,
  type DatapathChange,
} from '../../nodeagent/index.js';
import { registerAgentTracing } from '../../nodeagent/telemetry/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { useInfra, waitFor } from '../harness/index.js';
import { connect, pod, publish } from './procs.js';

/** One node, so a revision converges (and its spans end) once eu-1 applied it. */
const ONE_NODE = { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' };

/**
 * The emulated datapath, with applies held while the gate is closed: the
 * agent is busy with a revision (as a slow kernel apply would keep it) while
 * later ones commit, so the control plane's next push covers them all.
 */
class GatedDatapath implements Datapath {
  readonly #inner = new EmulatedDatapath();
  #gate: Promise<void> | undefined;
  #open: (() => void) | undefined;
  /** applies waiting at the gate */
  waiting = 0;
  readonly capacity = this.#inner.capacity;
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }
  release(): void {
    this.#open?.();
    this.#gate = undefined;
  }
  async apply(change: DatapathChange, opts?: { signal?: AbortSignal }): Promise<void> {
    if (this.#gate) {
      this.waiting += 1;
      await this.#gate;
      this.waiting -= 1;
    }
    return this.#inner.apply(change, opts);
  }
  digest = () => this.#inner.digest();
  verify = (opts?: { signal?: AbortSignal }) => this.#inner.verify(opts);
  read = (opts?: { signal?: AbortSignal }) => this.#inner.read(opts);
  counts = () => this.#inner.counts();
  holdsIpcachePrefix = (prefix: string) => this.#inner.holdsIpcachePrefix(prefix);
  close = () => this.#inner.close();
}

function tracing(): { provider: BasicTracerProvider; spans: InMemorySpanExporter } {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  return { provider, spans };
}

describe('propagation traces', () => {
  const infra = useInfra();
  const cpSide = tracing();
  const agentSide = tracing();
  const sourceSide = tracing();
  let cp: ControlPlane;
  let agent: NodeAgent;
  let nc: NatsConnection;
  const datapath = new GatedDatapath();

  beforeAll(async () => {
    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
      telemetry: { tracer: cpSide.provider.getTracer('test') },
    });
    const { address } = await cp.start();
    const admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    nc = await connect({ servers: infra.nats.url });
    await publish(
      nc,
      [
        { kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} },
        pod('web-1', 'eu-1'),
      ],
      undefined,
      ONE_NODE,
    );
    agent = new NodeAgent({
      server: address,
      node: { id: 'eu-1', cluster: 'eu' },
      datapath,
    });
    registerAgentTracing(agentSide.provider.getTracer('test'), agent, {
      cluster: 'eu',
      node: 'eu-1',
    });
    agent.start();
    await waitFor('the first revision applied', () => agent.status().appliedRevision > 0, {
      timeoutMs: 60_000,
    });
  }, 240_000);
  afterAll(async () => {
    await agent?.stop();
    await nc?.close();
    await cp?.stop();
  });

  it("an agent's apply span carries the trace id of the source event that caused it", async () => {
    const source = sourceSide.provider.getTracer('source').startSpan('source.change-set');
    const carrier = injectTraceContext(trace.setSpan(ROOT_CONTEXT, source));
    source.end();
    const traceId = source.spanContext().traceId;
    expect(carrier[TRACEPARENT_HEADER]).toContain(traceId);
    await publish(nc, [pod('web-2', 'eu-1')], carrier, ONE_NODE);

    const inTrace = (s: ReadableSpan) => s.spanContext().traceId === traceId;
    const applied = await waitFor(
      "the agent's apply span in the source's trace",
      () =>
        agentSide.spans
          .getFinishedSpans()
          .find((s) => s.name === 'meshplane.agent.apply' && inTrace(s)),
      { timeoutMs: 60_000 },
    );
    expect(applied.attributes['meshplane.node']).toBe('eu-1');

    // The control plane's side of the same trace: revision → cluster → push to the node.
    const cpSpans = await waitFor(
      'the revision, cluster and node spans ended',
      () => {
        const all = cpSide.spans.getFinishedSpans().filter(inTrace);
        const names = new Set(all.map((s) => s.name));
        return (
          ['meshplane.revision', 'meshplane.revision.cluster', 'meshplane.node.apply'].every((n) =>
            names.has(n),
          ) && all
        );
      },
      { timeoutMs: 60_000 },
    );
    const revision = cpSpans.find((s) => s.name === 'meshplane.revision')!;
    expect(revision.parentSpanContext?.spanId).toBe(source.spanContext().spanId);
    expect(revision.links.map((l) => l.context.spanId)).toContain(source.spanContext().spanId);
    const push = cpSpans.find((s) => s.name === 'meshplane.node.apply')!;
    expect(push.links.map((l) => l.context.spanId)).toContain(revision.spanContext().spanId);
    expect(applied.parentSpanContext?.spanId).toBe(push.spanContext().spanId);
  }, 180_000);

  it("a push covering several revisions links to each; the agent applies it in the newest one's trace", async () => {
    const tracker = cp.tracker!;
    /** Publishes one change set in a trace of its own and waits for its revision to commit. */
    const commit = async (name: string): Promise<{ revision: number; traceId: string }> => {
      const before = tracker.latestRevision;
      const source = sourceSide.provider.getTracer('source').startSpan(name);
      source.end();
      await publish(
        nc,
        [pod(name, 'eu-1')],
        injectTraceContext(trace.setSpan(ROOT_CONTEXT, source)),
        ONE_NODE,
      );
      const revision = await waitFor(
        `the revision of ${name}`,
        () => tracker.latestRevision > before && tracker.latestRevision,
        { timeoutMs: 60_000 },
      );
      return { revision, traceId: source.spanContext().traceId };
    };
    datapath.hold();
    try {
      const first = await commit('web-10');
      await waitFor('eu-1 busy applying the first', () => datapath.waiting === 1, {
        timeoutMs: 60_000,
      });
      const second = await commit('web-11');
      const third = await commit('web-12');
      expect(new Set([first.revision, second.revision, third.revision]).size).toBe(3);
      datapath.release();

      const applied = await waitFor(
        'the agent applied the newest revision',
        () =>
          agentSide.spans
            .getFinishedSpans()
            .find(
              (s) =>
                s.name === 'meshplane.agent.apply' &&
                s.attributes['meshplane.revision'] === third.revision,
            ),
        { timeoutMs: 60_000 },
      );
      const revisionSpan = (r: number) =>
        waitFor(
          `the span of revision ${r}`,
          () =>
            cpSide.spans
              .getFinishedSpans()
              .find(
                (s) => s.name === 'meshplane.revision' && s.attributes['meshplane.revision'] === r,
              ),
          { timeoutMs: 60_000 },
        );
      const [second_, third_] = [
        await revisionSpan(second.revision),
        await revisionSpan(third.revision),
      ];
      expect(second_.spanContext().traceId).toBe(second.traceId);
      expect(third_.spanContext().traceId).toBe(third.traceId);
      const push = await waitFor(
        'the push that covered the second and third',
        () =>
          cpSide.spans
            .getFinishedSpans()
            .find(
              (s) =>
                s.name === 'meshplane.node.apply' &&
                s.attributes['meshplane.revision'] === third.revision,
            ),
        { timeoutMs: 60_000 },
      );
      // One push for both (eu-1 had the first in flight while they committed).
      expect(push.attributes['meshplane.revisions_covered']).toBe(2);
      expect(push.links.map((l) => l.context.spanId)).toEqual([
        second_.spanContext().spanId,
        third_.spanContext().spanId,
      ]);
      expect(
        cpSide.spans
          .getFinishedSpans()
          .filter(
            (s) =>
              s.name === 'meshplane.node.apply' &&
              s.attributes['meshplane.revision'] === second.revision,
          ),
      ).toEqual([]);
      // The agent's apply of that push is its child, in the newest revision's source trace.
      expect(applied.parentSpanContext?.spanId).toBe(push.spanContext().spanId);
      expect(applied.spanContext().traceId).toBe(third.traceId);
    } finally {
      datapath.release();
    }
  }, 180_000);

  it("a change set carrying several callers: the revision is the first one's child, linked to each", async () => {
    const caller = (name: string) => {
      const span = sourceSide.provider.getTracer('meshctl').startSpan(name);
      span.end();
      return span.spanContext();
    };
    const first = caller('meshctl apply (first)');
    const second = caller('meshctl apply (second)');
    const headers = injectTraceContext(trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext(first)));
    const link = injectTraceContext(trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext(second)));
    // As a source publishes a change set folding two applies (TRACE_LINKS_HEADER).
    await publish(
      nc,
      [pod('web-20', 'eu-1')],
      { ...headers, [TRACE_LINKS_HEADER]: `${link.traceparent!},not-a-traceparent` },
      ONE_NODE,
    );
    const revision = await waitFor(
      "the revision span in the first caller's trace",
      () =>
        cpSide.spans
          .getFinishedSpans()
          .find(
            (s) => s.name === 'meshplane.revision' && s.spanContext().traceId === first.traceId,
          ),
      { timeoutMs: 60_000 },
    );
    expect(revision.parentSpanContext?.spanId).toBe(first.spanId);
    expect(revision.links.map((l) => [l.context.traceId, l.context.spanId])).toEqual([
      [first.traceId, first.spanId],
      [second.traceId, second.spanId],
    ]);
    expect(revision.attributes['meshplane.callers']).toBe(2);
  }, 120_000);
});
