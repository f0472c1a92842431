import { ErrorCode as NatsErrorCode, headers as natsHeaders, type NatsConnection } from 'nats';
import type { SourceApplyReply } from '../../common/index.js';
import { MeshError, SUBJECT_APPLY_PREFIX } from '../../common/index.js';
import type { ClusterSources } from './applier.js';

/**
 * Asks cluster sources over core NATS request/reply on
 * `meshplane.apply.<cluster>`, with the caller's W3C trace context in the
 * request's headers. No subscriber means the cluster's source is not
 * connected (or is not manifest-backed): UNAVAILABLE at once, not a timeout.
 */
export function natsClusterSources(nc: NatsConnection): ClusterSources {
  return {
    async request(cluster, request, opts = {}) {
      const signal = opts.signal;
      signal?.throwIfAborted();
      // nats.js requests take a timeout, not a signal: race the two.
      const timeout = opts.timeoutMs ?? 30_000;
      const subject = `${SUBJECT_APPLY_PREFIX}.${cluster}`;
      // The caller's trace context in the request's headers: the source
      // publishes the change set with it (its `traceparent` header).
      const entries = Object.entries(opts.traceContext ?? {});
      const headers = entries.length > 0 ? natsHeaders() : undefined;
      for (const [k, v] of entries) headers?.set(k, v);
      const reply = nc.request(subject, new TextEncoder().encode(JSON.stringify(request)), {
        timeout,
        ...(headers ? { headers } : {}),
      });
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(timedOut(cluster));
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      try {
        const msg = await Promise.race([reply, aborted]);
        return msg.json<SourceApplyReply>();
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === NatsErrorCode.NoResponders) {
          throw new MeshError(
            'UNAVAILABLE',
            `the source of cluster ${cluster} is not connected (nobody serves ${subject}); only a running manifest-backed source can take a change set`,
            { cause: err },
          );
        }
        if (code === NatsErrorCode.Timeout) throw timedOut(cluster);
        throw err;
      } finally {
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      }
    },
  };
}

function timedOut(cluster: string): MeshError {
  return new MeshError(
    'TIMEOUT',
    `the source of cluster ${cluster} did not answer in time; its folder may or may not have been written`,
  );
}
