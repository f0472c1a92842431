import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Link,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { Clock } from '../../common/index.js';
import { injectTraceContext, spanContextOf } from '../../common/telemetry/index.js';
import type { AckInfo, NackInfo, NodeIdentity, PushInfo, XdsCallbacks } from '../xds/index.js';
import type { Tracker } from './tracker.js';

interface RevisionSpans {
  span: Span;
  /** cluster -> its span, until the cluster converged at the revision */
  clusters: Map<string, Span>;
}

/**
 * Traces of propagation: a span per mesh revision (child of the first
 * source event's trace context, linked to every caller's: each change set
 * committed with it and each further `meshctl apply` a change set carries),
 * a child span per cluster until the cluster converged at it, and a span per
 * push to a node until its ACK or NACK (child of the newest revision it
 * covers, linked to every revision a coalesced push covers). The push's
 * context goes to the agent with the push (`pushContext`), so the agent's
 * apply span is in the source event's trace.
 *
 * Fed by the tracker's events and the xDS hooks; register it with
 * `combineCallbacks(tracker, tracing)`.
 */
export class PropagationTracing implements XdsCallbacks {
  readonly #tracer: Tracer;
  readonly #tracker: Tracker;
  readonly #clock: Clock;
  readonly #revisions = new Map<number, RevisionSpans>();
  /** node key -> the span of its push in flight */
  readonly #pushes = new Map<string, Span>();
  readonly #off: () => void;

  constructor(tracer: Tracer, tracker: Tracker, clock: Clock) {
    this.#tracer = tracer;
    this.#tracker = tracker;
    this.#clock = clock;
    this.#off = tracker.subscribe((e) => {
      switch (e.type) {
        case 'revision':
          this.#openRevision(e.revision, e.commitTime, e.traceparents, e.target);
          break;
        case 'converged':
          this.#converged(e.revision, e.cluster, e.at);
          break;
        case 'revision-evicted':
          this.#closeRevision(e.revision, this.#clock.now(), false);
          break;
        default:
          break;
      }
    });
  }

  #openRevision(
    revision: number,
    commitTime: number,
    traceparents: readonly string[],
    target: ReadonlyMap<string, number>,
  ): void {
    const sources = traceparents.flatMap((t) => {
      const sc = spanContextOf(t);
      return sc ? [sc] : [];
    });
    const parent = sources[0] ? trace.setSpanContext(ROOT_CONTEXT, sources[0]) : ROOT_CONTEXT;
    const span = this.#tracer.startSpan(
      'meshplane.revision',
      {
        kind: SpanKind.INTERNAL,
        startTime: commitTime,
        links: sources.map((context): Link => ({ context })),
        attributes: { 'meshplane.revision': revision, 'meshplane.callers': sources.length },
      },
      parent,
    );
    const clusters = new Map<string, Span>();
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    for (const [cluster, nodes] of target) {
      clusters.set(
        cluster,
        this.#tracer.startSpan(
          'meshplane.revision.cluster',
          {
            startTime: commitTime,
            attributes: {
              'meshplane.revision': revision,
              'meshplane.cluster': cluster,
              'meshplane.nodes_behind': nodes,
            },
          },
          ctx,
        ),
      );
    }
    this.#revisions.set(revision, { span, clusters });
    if (clusters.size === 0) this.#closeRevision(revision, commitTime, true);
  }

  #converged(revision: number, cluster: string, at: number): void {
    const r = this.#revisions.get(revision);
    const span = r?.clusters.get(cluster);
    if (!r || !span) return;
    span.end(at);
    r.clusters.delete(cluster);
    if (r.clusters.size === 0) this.#closeRevision(revision, at, true);
  }

  #closeRevision(revision: number, at: number, converged: boolean): void {
    const r = this.#revisions.get(revision);
    if (!r) return;
    for (const span of r.clusters.values()) {
      span.setAttribute('meshplane.converged', false);
      span.end(at);
    }
    r.span.setAttribute('meshplane.converged', converged);
    r.span.end(at);
    this.#revisions.delete(revision);
  }

  pushContext(n: NodeIdentity, revision: number): Record<string, string> {
    this.#pushes.get(n.key)?.end();
    const synced = this.#tracker.syncedRevision(n);
    const covered = [...this.#revisions.entries()].filter(([r]) => r > synced && r <= revision);
    const newest = covered.at(-1)?.[1];
    const parent = newest?.clusters.get(n.cluster) ?? newest?.span;
    const span = this.#tracer.startSpan(
      'meshplane.node.apply',
      {
        kind: SpanKind.PRODUCER,
        links: covered.map(([, r]) => ({ context: r.span.spanContext() })),
        attributes: {
          'meshplane.cluster': n.cluster,
          'meshplane.node': n.node,
          'meshplane.revision': revision,
          'meshplane.revisions_covered': covered.length,
        },
      },
      parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT,
    );
    this.#pushes.set(n.key, span);
    return injectTraceContext(trace.setSpan(ROOT_CONTEXT, span));
  }

  onPush(n: NodeIdentity, push: PushInfo): void {
    this.#pushes.get(n.key)?.setAttributes({
      'meshplane.resources': push.resources,
      'meshplane.removed': push.removed,
      'meshplane.bytes': push.bytes,
    });
  }

  onAck(n: NodeIdentity, ack: AckInfo): void {
    const span = this.#pushes.get(n.key);
    if (!span) return;
    this.#pushes.delete(n.key);
    span.setAttributes({
      'meshplane.acked_revision': ack.revision,
      'meshplane.apply_ms': ack.applyDurationUs / 1000,
      'meshplane.digest': ack.digest,
    });
    span.end(ack.receivedAt);
  }

  onNack(n: NodeIdentity, nack: NackInfo): void {
    const span = this.#pushes.get(n.key);
    if (!span) return;
    this.#pushes.delete(n.key);
    span.setStatus({ code: SpanStatusCode.ERROR, message: nack.message });
    span.end();
  }

  onStreamClosed(n: NodeIdentity, reason: string): void {
    const span = this.#pushes.get(n.key);
    if (!span) return;
    this.#pushes.delete(n.key);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `stream closed: ${reason}` });
    span.end();
  }

  /** Ends every open span (at shutdown). */
  close(): void {
    this.#off();
    for (const span of this.#pushes.values()) span.end();
    this.#pushes.clear();
    for (const r of [...this.#revisions.keys()]) this.#closeRevision(r, this.#clock.now(), false);
  }
}
