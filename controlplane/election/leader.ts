import type { Namespace } from 'etcd3';
import { sleep, type Logger } from '../../common/index.js';

/**
 * Runs `work` only while this replica holds the named etcd election (a lease
 * with `ttlSeconds`): a replica that dies or is partitioned loses the lease
 * and another takes over. `work` gets a signal that aborts when leadership
 * is lost or the caller stops; when it returns or throws, leadership is
 * given up and, unless stopped, the replica campaigns again.
 */
export async function runWhileLeader(
  etcd: Namespace,
  election: string,
  candidate: string,
  signal: AbortSignal,
  log: Logger,
  work: (leadership: AbortSignal) => Promise<void>,
  opts: { ttlSeconds?: number; onLeadership?: (leader: boolean) => void } = {},
): Promise<void> {
  while (!signal.aborted) {
    const campaign = etcd.election(election, opts.ttlSeconds ?? 10).campaign(candidate);
    const lost = new AbortController();
    campaign.once('error', (err: Error) => {
      log.warn('lost election', { election, error: err.message });
      lost.abort();
    });
    try {
      const elected = await new Promise<boolean>((resolve) => {
        campaign.once('elected', () => resolve(true));
        lost.signal.addEventListener('abort', () => resolve(false), { once: true });
        signal.addEventListener('abort', () => resolve(false), { once: true });
      });
      if (elected) {
        log.info('elected', { election, candidate });
        opts.onLeadership?.(true);
        await work(AbortSignal.any([signal, lost.signal])).catch((err: unknown) => {
          if (!signal.aborted)
            log.warn('leader work failed', {
              election,
              error: err instanceof Error ? err.message : String(err),
            });
        });
      }
    } finally {
      opts.onLeadership?.(false);
      await campaign.resign().catch(() => undefined);
    }
    await sleep(500, signal).catch(() => undefined);
  }
}
