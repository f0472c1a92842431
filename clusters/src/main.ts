// Composition root of a manifest-backed cluster source process:
//   node --import tsx clusters/src/main.ts --dir DIR --nats URL [--nodes N]
// stdout carries one JSON line per milestone ({"event":"ready"|"invalid",...});
// logs go to stderr. SIGTERM/SIGINT stop it without removing anything.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { NatsConnection } from 'nats';
import { connect } from 'nats';
import type { Logger } from '../../common/index.js';
import { jsonLogger, sleep } from '../../common/index.js';
import { ManifestSource } from './index.js';

const USAGE = 'usage: main.ts --dir DIR --nats URL [--nodes N]';

function printLine(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function parseCommandLine(): { dir: string; nats: string; nodes: number | undefined } | string {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        dir: { type: 'string' },
        nats: { type: 'string' },
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
  return { dir: values.dir, nats: values.nats, nodes };
}

/** Connects, retrying until NATS answers or the signal aborts (a source may start before its server). */
async function connectNats(
  servers: string,
  name: string,
  signal: AbortSignal,
  logger: Logger,
): Promise<NatsConnection | undefined> {
  for (let attempt = 0; !signal.aborted; attempt += 1) {
    try {
      return await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 1_000 });
    } catch (err) {
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
  const nc = await connectNats(
    args.nats,
    `meshplane-source:${resolve(args.dir)}`,
    stop.signal,
    logger,
  );
  if (nc === undefined) return 0;
  let ready = false;
  const source = new ManifestSource({
    dir: args.dir,
    nc,
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
