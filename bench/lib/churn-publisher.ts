// The services benchmark's churn, published from its own process so a busy
// control plane (in the benchmark's process) cannot bunch the stream up:
//   node --import tsx bench/lib/churn-publisher.ts --file F --nats URL --interval MS
// F holds a JSON array of change sets; one is published every MS
// milliseconds (late ones go out at once, none are skipped) to
// `meshplane.events.<cluster>.<kind>`, one part per kind, as a cluster source
// would. One JSON line on stdout per change set, once every part is
// acknowledged: {"event":"published","index":i,"seq":n} (n: its last part), then
// {"event":"done"}. SIGTERM stops it.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { connect } from 'nats';
import type { ChangeSetEvent } from '../../common/index.js';
import { publishChangeSet } from './publish-parts.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      file: { type: 'string' },
      nats: { type: 'string' },
      interval: { type: 'string' },
    },
    strict: true,
  });
  const interval = Number(values.interval);
  if (values.file === undefined || values.nats === undefined || !(interval >= 0)) {
    process.stderr.write('usage: churn-publisher.ts --file F --nats URL --interval MS\n');
    return 2;
  }
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());
  const events = JSON.parse(await readFile(values.file, 'utf8')) as ChangeSetEvent[];
  const nc = await connect({ servers: values.nats, name: 'bench-services-churn' });
  const js = nc.jetstream();
  const start = performance.now();
  for (const [i, ev] of events.entries()) {
    if (stop.signal.aborted) break;
    const wait = start + i * interval - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const seq = await publishChangeSet(js, ev);
    process.stdout.write(`${JSON.stringify({ event: 'published', index: i, seq })}\n`);
  }
  process.stdout.write(`${JSON.stringify({ event: 'done' })}\n`);
  await nc.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`churn-publisher: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
