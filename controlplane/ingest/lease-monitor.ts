import type { Etcd3 } from 'etcd3';
import { sleep, type Clock, type Logger } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';
import type { SourceRegistry } from './source-registry.js';

export interface LeaseView {
  clusters(): { name: string }[];
  stale(cluster: string): string | undefined;
}

/**
 * Marks a member cluster stale in etcd while its source has been silent
 * beyond the lease, and clears the mark when it reports again. The mark is
 * mesh state (a revision): ServiceImports drop that cluster's endpoints.
 * Its identities and ipcache entries stay (fail-static) until it is removed.
 * Run by the ingest leader; it waits one lease after gaining leadership
 * before judging, so health it has not heard yet is not taken for silence.
 */
export async function monitorSourceLeases(
  etcd: Etcd3,
  layout: KeyLayout,
  view: LeaseView,
  sources: SourceRegistry,
  clock: Clock,
  log: Logger,
  leaseMs: number,
  signal: AbortSignal,
): Promise<void> {
  await sleep(leaseMs, signal).catch(() => undefined);
  while (!signal.aborted) {
    for (const { name } of view.clusters()) {
      const st = sources.state(name);
      const silent = !st || clock.now() - st.lastSeen > leaseMs;
      const marked = view.stale(name) !== undefined;
      try {
        if (silent && !marked) {
          // Only for a member: a removal in between must not leave a mark behind.
          await etcd
            .if(layout.member(name), 'Create', '>', 0)
            .then(etcd.put(layout.stale(name)).value(new Date(clock.now()).toISOString()))
            .commit();
          log.warn('cluster source silent beyond its lease: its endpoints leave every import', {
            cluster: name,
            leaseMs,
          });
        } else if (!silent && marked) {
          await etcd.delete().key(layout.stale(name));
          log.info('cluster source reporting again', { cluster: name });
        }
      } catch (err) {
        log.warn('cannot update source lease mark', {
          cluster: name,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
    await sleep(Math.min(1000, Math.max(50, leaseMs / 4)), signal).catch(() => undefined);
  }
}
