import { SpanKind, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { extractTraceContext } from '../../common/telemetry/index.js';
import type { NodeAgent } from '../client/index.js';

/**
 * A span per revision the agent applies or rejects, child of the trace
 * context the control plane sent with it (extracted from the push's
 * carrier): so it carries the trace id of the source event behind the
 * revision. Its duration is the apply as the agent measured it.
 */
export function registerAgentTracing(
  tracer: Tracer,
  agent: Pick<NodeAgent, 'on'>,
  who: { cluster: string; node: string },
  clock: { now(): number } = { now: () => Date.now() },
): { close(): void } {
  const offs = [
    agent.on('revisionApplied', (e) => {
      const end = clock.now();
      tracer
        .startSpan(
          'meshplane.agent.apply',
          {
            kind: SpanKind.CONSUMER,
            startTime: end - e.durationUs / 1000,
            attributes: {
              'meshplane.cluster': who.cluster,
              'meshplane.node': who.node,
              'meshplane.revision': e.revision,
              'meshplane.digest': e.digest,
              'meshplane.resources': e.resources,
            },
          },
          extractTraceContext(e.traceContext),
        )
        .end(end);
    }),
    agent.on('revisionRejected', (e) => {
      const span = tracer.startSpan(
        'meshplane.agent.apply',
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'meshplane.cluster': who.cluster,
            'meshplane.node': who.node,
            'meshplane.revision': e.revision,
            'meshplane.held_revision': e.heldRevision,
          },
        },
        extractTraceContext(e.traceContext),
      );
      span.setStatus({ code: SpanStatusCode.ERROR, message: e.detail.message });
      span.end();
    }),
  ];
  return { close: () => offs.forEach((off) => off()) };
}
