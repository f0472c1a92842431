import { ErrorCode as NatsErrorCode, type NatsConnection } from 'nats';
import type { SourceApplyReply } from '../../common/index.js';
import { MeshError, SUBJECT_APPLY_PREFIX } from '../../common/index.js';
import type { ClusterSources } from './applier.js';

/**
 * Asks cluster sources over core NATS request/reply on
 * `meshplane.apply.<cluster>`. No subscriber means the cluster's source is not
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
      const reply = nc.request(subject, new TextEncoder().encode(JSON.stringify(request)), {
        timeout,
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
