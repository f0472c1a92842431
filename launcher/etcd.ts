import { randomBytes } from 'node:crypto';
import { findBinary } from './find-binary.js';
import { freePorts } from './free-ports.js';
import { launchServer } from './launch.js';
import { LaunchError } from './launch-error.js';
import type { EtcdServer, LaunchOptions } from './types.js';

/** etcd 3.4 cannot choose its own ports, so a port taken between probe and bind is retried. */
const MAX_ATTEMPTS = 5;

// The control plane commits a whole change set in one transaction: raise etcd's
// defaults (128 ops, 1.5 MiB) to what it needs.
const MAX_TXN_OPS = 10_000;
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;

/** Starts a single-member etcd on loopback ports in a fresh data dir. */
export async function startEtcd(options: LaunchOptions = {}): Promise<EtcdServer> {
  const binary = options.binaries?.etcd ?? findBinary('etcd');
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
    const endpoint = `http://127.0.0.1:${clientPort}`;
    try {
      const server = await launchServer(
        {
          name: 'etcd',
          binary,
          dirPrefix: 'meshplane-etcd-',
          env: envWithoutEtcdVariables(),
          prepare: (dataDir) =>
            Promise.resolve(
              etcdArgs({ dataDir, endpoint, peerUrl: `http://127.0.0.1:${peerPort}` }),
            ),
          probe: () => (signal) => isHealthy(endpoint, signal),
        },
        options,
      );
      return { endpoint, dataDir: server.dataDir, pid: server.pid, stop: server.stop };
    } catch (err) {
      if (attempt < MAX_ATTEMPTS && isPortClash(err)) {
        options.log?.(
          `etcd: a port was taken before etcd bound it; retrying (attempt ${attempt + 1})`,
        );
        continue;
      }
      throw err;
    }
  }
}

function etcdArgs(p: { dataDir: string; endpoint: string; peerUrl: string }): string[] {
  const name = 'meshplane';
  return [
    ...['--name', name, '--data-dir', p.dataDir],
    ...['--listen-client-urls', p.endpoint, '--advertise-client-urls', p.endpoint],
    ...['--listen-peer-urls', p.peerUrl, '--initial-advertise-peer-urls', p.peerUrl],
    ...['--initial-cluster', `${name}=${p.peerUrl}`, '--initial-cluster-state', 'new'],
    // A unique token so two test etcds can never mistake each other for peers.
    ...['--initial-cluster-token', `meshplane-${randomBytes(6).toString('hex')}`],
    ...['--max-txn-ops', String(MAX_TXN_OPS), '--max-request-bytes', String(MAX_REQUEST_BYTES)],
    // 3.4 defaults to the deprecated capnslog logger, which warns about itself.
    ...['--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn'],
  ];
}

/**
 * etcd reads ETCD_* variables as flags and refuses to start when one shadows a
 * flag we pass, so a developer's shell settings must not leak in.
 */
function envWithoutEtcdVariables(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
}

async function isHealthy(endpoint: string, signal: AbortSignal): Promise<true | undefined> {
  const res = await fetch(`${endpoint}/health`, { signal });
  const body = await res.text();
  if (!res.ok) return undefined;
  const health = (JSON.parse(body) as { health?: unknown }).health;
  return health === 'true' ? true : undefined;
}

function isPortClash(err: unknown): boolean {
  return (
    err instanceof LaunchError &&
    err.exitStatus !== undefined &&
    err.logTail.some((line) => line.includes('address already in use'))
  );
}
