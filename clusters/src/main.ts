// Composition root of a manifest-backed cluster source process:
//   node --import tsx clusters/src/main.ts --dir DIR --nats URL [--nats-creds FILE] [--nodes N]
// With --nats-creds (a 0600 JSON file from `meshctl up`; never a password on
// the command line, where `ps` shows it) the source logs in as its cluster's
// user, which may publish only that cluster's subjects; it then leaves the
// events stream to the control plane, as the server allows it no JetStream API.
// stdout carries one JSON line per milestone ({"event":"ready"|"invalid",...});
// logs go to stderr. SIGTERM/SIGINT stop it without removing anything.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ConnectionOptions, NatsConnection } from 'nats';
import { Events, connect } from 'nats';
import type { Logger } from '../../common/index.js';
import { MeshError, jsonLogger, sleep } from '../../common/index.js';
import { ManifestSource, natsAuthOptions, natsEventSink, readNatsCredentials } from './index.js';

const USAGE = 'usage: main.ts --dir DIR --nats URL [--nats-creds FILE] [--nodes N]';

function printLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

interface CommandLine {
  dir: string;
  nats: string;
  natsCreds: string | undefined;
  nodes: number | undefined;
}

function parseCommandLine(): CommandLine | string {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        nats: { type: 'string' },
        'nats-creds': { type: 'string' },
        nodes: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (values.dir === undefined || values.nats === undefined) return '--dir and --nats are required';
  const nodes = values.nodes === undefined ? undefined : Number(values.nodes);
  if (nodes !== undefined && !(Number.isInteger(nodes) && nodes >= 1)) {
    return `--nodes must be a positive integer, got ${values.nodes}`;
  }
  return { dir: values.dir, nats: values.nats, natsCreds: values['nats-creds'], nodes };
}

/**
 * Connects, retrying until NATS answers or the signal aborts (a source may
 * start before its server). Refused credentials are not retried: they will
 * not get better, and a loud exit beats a source that silently never publishes.
 */
async function connectNats(
  options: ConnectionOptions,
  signal: AbortSignal,
  logger: Logger,
): Promise<NatsConnection | undefined> {
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      return await connect({ ...options, maxReconnectAttempts: -1, reconnectTimeWait: 1_000 });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'AUTHORIZATION_VIOLATION') {
        throw new MeshError('UNAVAILABLE', `NATS refused the login of ${String(options.user)}`, {
          cause: err,
        });
      }
      const retryInMs = Math.min(5_000, 200 * 2 ** attempt);
      logger.warn('connecting to NATS failed; retrying', {
        error: err instanceof Error ? err.message : String(err),
        retryInMs,
      });
      await sleep(retryInMs, signal).catch(() => undefined);
    }
  }
  return undefined;
}

/**
 * A permission violation does not close the connection and would otherwise
 * only show as a publish that never lands: log every server error.
 */
async function logServerErrors(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const status of nc.status()) {
    if (status.type === Events.Error) {
      logger.error('NATS server error', {
        error: typeof status.data === 'string' ? status.data : JSON.stringify(status.data),
        ...(status.permissionContext ? { refused: status.permissionContext } : {}),
      });
    }
  }
}

async function main(): Promise<number> {
  const args = parseCommandLine();
  if (typeof args === 'string') {
    process.stderr.write(`${args}\n${USAGE}\n`);
    return 2;
  }
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  const logger = jsonLogger({ component: 'cluster-source', dir: resolve(args.dir) });
  const creds =
    args.natsCreds === undefined
      ? undefined
      : await readNatsCredentials(args.natsCreds, { signal: stop.signal });
  const nc = await connectNats(
    {
      servers: args.nats,
      name: `meshplane-source:${resolve(args.dir)}`,
      ...(creds ? natsAuthOptions(creds) : {}),
    },
    stop.signal,
    logger,
  );
  if (nc === undefined) return 0;
  void logServerErrors(nc, logger);
  let ready = false;
  const source = new ManifestSource({
    dir: args.dir,
    sink: natsEventSink(nc, { createStream: creds === undefined }),
    nodesPerCluster: args.nodes,
    signal: stop.signal,
    logger,
    onPublished: (event) => {
      if (ready) return;
      ready = true;
      printLine({ event: 'ready', cluster: event.cluster.name });
    },
  });
  const started = await source.start();
  if (started.status === 'invalid') {
    printLine({ event: 'invalid', cluster: started.cluster ?? null, errors: started.errors });
  }
  if (!stop.signal.aborted) {
    await new Promise((done) => stop.signal.addEventListener('abort', done, { once: true }));
  }
  await source.stop();
  await nc.drain().catch(() => nc.close());
  return 0;
}

main().then(
  (code) => {
    // Exit explicitly: everything is stopped and flushed by now, and a
    // lingering handle (a watcher's, a socket's) must not keep a stopped
    // source alive past its supervisor's grace period.
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(
      `cluster source failed: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exit(1);
  },
);
