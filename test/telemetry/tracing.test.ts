// The control plane's propagation spans, fed by the real tracker and the
// xDS hooks exactly as the server calls them (no network): a revision that
// commits several change sets, and a push that covers several revisions
// because the node was busy with an earlier one (the merging push queue).
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { injectTraceContext, spanContextOf } from '../../common/telemetry/index.js';
import { PropagationTracing, Tracker } from '../../controlplane/telemetry/index.js';
import type { AckInfo, XdsCallbacks } from '../../controlplane/xds/index.js';

const EU1 = { key: 'eu/eu-1', cluster: 'eu', node: 'eu-1' };
const NODES = [{ cluster: 'eu', node: 'eu-1' }];

function setup() {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const tracker = new Tracker({ clock });
  const tracing = new PropagationTracing(provider.getTracer('test'), tracker, clock);
  // The server calls the tracker first, then tracing (combineCallbacks order).
  const hooks: XdsCallbacks[] = [tracker, tracing];
  const revision = (revision: number, traceparents: string[] = []) => {
    tracker.onRevision(
      { revision, commitTime: clock.t, affected: ['eu/eu-1'], removed: [], traceparents },
      NODES,
    );
  };
  /** One push as the xDS session sends it: its trace context first, then the push. */
  const push = (revision: number): Record<string, string> => {
    const carrier = tracing.pushContext(EU1, revision);
    const info = { revision, nonce: `n${revision}`, resources: 1, removed: 0, bytes: 10 };
    for (const h of hooks) h.onPush?.(EU1, { ...info, sentAt: clock.t });
    return carrier;
  };
  /** `current`: what it ACKs is still its expected snapshot (nothing newer affected it). */
  const ack = (revision: number, current = true) => {
    const a: AckInfo = {
      revision,
      nonce: `n${revision}`,
      applyDurationUs: 1000,
      digest: 'd',
      expectedDigest: 'd',
      current,
      sentAt: clock.t,
      receivedAt: clock.t,
    };
    for (const h of hooks) h.onAck?.(EU1, a);
  };
  for (const h of hooks) h.onStreamOpen?.(EU1);
  const named = (name: string): ReadableSpan[] =>
    spans.getFinishedSpans().filter((s) => s.name === name);
  return { clock, provider, tracing, revision, push, ack, named };
}

/** A caller's span context as a change set's header carries it. */
function callerContext(provider: BasicTracerProvider, name: string) {
  const span = provider.getTracer('caller').startSpan(name);
  span.end();
  const traceparent = injectTraceContext(trace.setSpan(ROOT_CONTEXT, span)).traceparent!;
  return { traceparent, context: span.spanContext() };
}

describe('propagation spans', () => {
  it('a revision committing several change sets is the child of the first and linked to every one', () => {
    const { provider, revision, push, ack, named } = setup();
    const a = callerContext(provider, 'apply eu');
    const b = callerContext(provider, 'apply us');
    revision(10, [a.traceparent, b.traceparent]);
    push(10);
    ack(10);
    const [rev] = named('meshplane.revision');
    expect(rev).toBeDefined();
    expect(rev!.spanContext().traceId).toBe(a.context.traceId);
    expect(rev!.parentSpanContext?.spanId).toBe(a.context.spanId);
    expect(rev!.links.map((l) => l.context.spanId)).toEqual([a.context.spanId, b.context.spanId]);
    expect(rev!.links[1]!.context.traceId).toBe(b.context.traceId);
    expect(rev!.attributes['meshplane.callers']).toBe(2);
  });

  it('a coalesced push links to every revision it covers and is the child of the newest', () => {
    const { clock, provider, revision, push, ack, named } = setup();
    revision(10);
    push(10);
    ack(10);
    // 11 goes out; 12 and 13 commit while the node is still applying it.
    revision(11, [callerContext(provider, 'c11').traceparent]);
    push(11);
    revision(12, [callerContext(provider, 'c12').traceparent]);
    clock.t += 5;
    revision(13, [callerContext(provider, 'c13').traceparent]);
    ack(11, false);
    // The merging queue's next push carries the newest state: 12 and 13 in one.
    const carrier = push(13);
    ack(13);

    const revisions = new Map(
      named('meshplane.revision').map((s) => [s.attributes['meshplane.revision'], s]),
    );
    const clusters = new Map(
      named('meshplane.revision.cluster').map((s) => [s.attributes['meshplane.revision'], s]),
    );
    const pushes = named('meshplane.node.apply');
    expect(pushes.map((p) => p.attributes['meshplane.revision'])).toEqual([10, 11, 13]);
    const coalesced = pushes[2]!;
    expect(coalesced.attributes['meshplane.revisions_covered']).toBe(2);
    expect(coalesced.links.map((l) => l.context.spanId)).toEqual([
      revisions.get(12)!.spanContext().spanId,
      revisions.get(13)!.spanContext().spanId,
    ]);
    expect(coalesced.links[0]!.context.traceId).toBe(revisions.get(12)!.spanContext().traceId);
    // Child of revision 13's cluster span, in 13's trace; the agent continues it.
    expect(coalesced.parentSpanContext?.spanId).toBe(clusters.get(13)!.spanContext().spanId);
    expect(coalesced.spanContext().traceId).toBe(revisions.get(13)!.spanContext().traceId);
    expect(spanContextOf(carrier.traceparent!)?.spanId).toBe(coalesced.spanContext().spanId);
    // The push of 11 covered 11 only.
    expect(pushes[1]!.links.map((l) => l.context.spanId)).toEqual([
      revisions.get(11)!.spanContext().spanId,
    ]);
    // Both revisions converged with that one ACK.
    expect(revisions.get(12)!.attributes['meshplane.converged']).toBe(true);
    expect(revisions.get(13)!.attributes['meshplane.converged']).toBe(true);
  });
});
