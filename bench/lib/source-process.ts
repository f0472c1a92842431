// One manifest-backed cluster source in its own process, for benchmarks:
//   node --import tsx bench/lib/source-process.ts --dir DIR --nats URL [--debounce MS]
// As clusters/src/main.ts, but with the debounce as an option and one JSON
// line on stdout per acknowledged change set:
// {"event":"published","seq":n,"full":b,"upserts":n,"deletes":n} (the stream
// sequence; the benchmark reads the stream's own timestamps, which a busy
// source process cannot delay). Logs go to stderr (warnings and errors only).
// SIGTERM stops it.
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import type { Logger } from '../../common/index.js';
import { jsonLogger } from '../../common/index.js';
import { ManifestSource } from '../../clusters/src/index.js';

function quietLogger(base: Record<string, unknown>): Logger {
  const inner = jsonLogger(base);
  const l: Logger = {
    info: () => undefined,
    warn: (m, f) => inner.warn(m, f),
    error: (m, f) => inner.error(m, f),
    child: () => l,
  };
  return l;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string' },
      nats: { type: 'string' },
      debounce: { type: 'string', default: '150' },
    },
    strict: true,
  });
  if (values.dir === undefined || values.nats === undefined) {
    process.stderr.write('usage: source-process.ts --dir DIR --nats URL [--debounce MS]\n');
    return 2;
  }
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  const nc = await connect({ servers: values.nats, name: `bench-source:${values.dir}` });
  const source = new ManifestSource({
    dir: values.dir,
    nc,
    debounceMs: Number(values.debounce),
    signal: stop.signal,
    logger: quietLogger({ component: 'bench-source', dir: values.dir }),
    onPublished: (event, seq) => {
      process.stdout.write(
        `${JSON.stringify({
          event: 'published',
          seq,
          full: event.full,
          upserts: event.upserts.length,
          deletes: event.deletes.length,
        })}\n`,
      );
    },
    onRefused: (errors) =>
      process.stdout.write(`${JSON.stringify({ event: 'refused', errors: errors.length })}\n`),
  });
  const started = await source.start();
  if (started.status === 'invalid') {
    process.stdout.write(`${JSON.stringify({ event: 'invalid', errors: started.errors })}\n`);
  }
  if (!stop.signal.aborted) {
    await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
  }
  await source.stop();
  await nc.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`source-process: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
