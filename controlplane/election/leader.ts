import type { Namespace } from 'etcd3';
import { raceAbort, sleep, type Logger } from '../../common/index.js';

/**
 * The ingest election's lease, in seconds. etcd3 sends a keepalive every
 * third of it from this process's event loop, and etcd ends the lease when
 * none arrived for a whole TTL: a replica whose loop is starved of CPU for
 * longer than the TTL (seen at load average 20+ on 2 cores with a 5 s lease)
 * loses leadership and ingestion stalls until it is elected again. 15 s (the
 * lease Kubernetes' leader election uses) tolerates stalls of up to ~15 s;
 * the price is failover after a crash — another replica (or the restarted
 * one) takes over once the dead leader's lease ends, ≤ 15 s instead of ≤ 5 s.
 * A replica that stops or loses the election resigns, which revokes its lease,
 * so a handover without a crash does not wait for it.
 */
export const INGEST_LEASE_SECONDS = 15;

/** How long giving up leadership may take before campaigning again anyway (etcd may be away). */
const RESIGN_TIMEOUT_MS = 2_000;

/**
 * Runs `work` only while this replica holds the named etcd election (a lease
 * with `ttlSeconds`): a replica that dies or is partitioned loses the lease
 * and another takes over. `work` gets a signal that aborts when leadership
 * is lost or the caller stops; when it returns or throws, leadership is
 * given up (the lease revoked, so others need not wait for it to end) and,
 * unless stopped, the replica campaigns again at once — after a lost lease
 * it is leader again as soon as etcd grants it a new one, when no other
 * replica is ahead of it.
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
    let elected = false;
    campaign.once('error', (err: Error) => {
      log.warn(elected ? 'lost leadership' : 'campaign failed', { election, error: err.message });
      lost.abort();
    });
    try {
      const outcome = new Promise<boolean>((resolve) => {
        campaign.once('elected', () => resolve(true));
        lost.signal.addEventListener('abort', () => resolve(false), { once: true });
      });
      // `signal` lives as long as the replica: no listener may stay behind per round.
      elected = await raceAbort(outcome, signal, () => false);
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
      const giveUp = new AbortController();
      await Promise.race([
        campaign.resign().catch(() => undefined),
        sleep(RESIGN_TIMEOUT_MS, giveUp.signal).catch(() => undefined),
      ]);
      giveUp.abort();
    }
    // A lost lease campaigns again at once; a failed campaign or work waits a
    // little, so an etcd that is away is not hammered.
    if (!(elected && lost.signal.aborted)) await sleep(500, signal).catch(() => undefined);
  }
}
