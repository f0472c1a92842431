import { startEtcd } from './etcd.js';
import { startNats } from './nats.js';
import type { EtcdServer, Infra, LaunchOptions, NatsServer } from './types.js';

/**
 * Starts etcd and NATS in parallel. If either fails, the other's startup is
 * aborted (or it is stopped) before this rejects with the first failure.
 * Log lines are prefixed with the server's name since both share one sink.
 */
export async function startInfra(options: LaunchOptions = {}): Promise<Infra> {
  const failed = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal;
  const withPrefix = (prefix: string): Pick<LaunchOptions, 'log'> => {
    const { log } = options;
    return log ? { log: (line) => log(`[${prefix}] ${line}`) } : {};
  };

  const failFast = <T>(p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      failed.abort(err);
      throw err;
    });
  const [etcd, nats] = await Promise.allSettled([
    failFast(startEtcd({ ...options, signal, ...withPrefix('etcd') })),
    failFast(startNats({ ...options, signal, ...withPrefix('nats') })),
  ]);

  if (etcd.status === 'fulfilled' && nats.status === 'fulfilled') {
    return { etcd: etcd.value, nats: nats.value, stop: stopBoth(etcd.value, nats.value) };
  }
  // Aborting `failed` already triggered these stops; await them so nothing outlives us.
  const started = [etcd, nats].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  await Promise.all(started.map((server) => server.stop()));
  // The first failure (the caller's abort reason, if that came first); the other
  // server's rejection is usually just the abort that failure caused.
  throw failed.signal.reason;
}

function stopBoth(etcd: EtcdServer, nats: NatsServer): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => (stopping ??= Promise.all([etcd.stop(), nats.stop()]).then(() => undefined));
}
