// Composition root of a control plane replica.
//   node --import tsx controlplane/main.ts --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]
// --nats-creds: a JSON file {"user","pass"} (mode 0600, written by `meshctl up`),
// so the password never appears on a command line.
// Prints one JSON line on stdout when serving: {"event":"ready","address":"127.0.0.1:PORT"}.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MeshError, jsonLogger } from '../common/index.js';
import { ControlPlane } from './control-plane.js';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string' },
    nats: { type: 'string' },
    'nats-creds': { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:0' },
  },
});
if (!values.etcd || !values.nats) {
  process.stderr.write(
    'usage: controlplane --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]\n',
  );
  process.exit(2);
}
const log = jsonLogger({ component: 'controlplane' });

/** The user and password from a credentials file; errors name the file, never the password. */
async function readNatsAuth(file: string): Promise<{ user: string; pass: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new MeshError('VALIDATION', `cannot read NATS credentials ${file}`, { cause: err });
  }
  const { user, pass } = (raw ?? {}) as { user?: unknown; pass?: unknown };
  if (typeof user !== 'string' || typeof pass !== 'string' || user === '' || pass === '') {
    throw new MeshError('VALIDATION', `${file}: NATS credentials need a string user and pass`);
  }
  return { user, pass };
}

let natsAuth: { user: string; pass: string } | undefined;
try {
  natsAuth = values['nats-creds'] ? await readNatsAuth(values['nats-creds']) : undefined;
} catch (err) {
  log.error('control plane failed to start', {
    error: err instanceof Error ? err.message : String(err),
  });
  process.exit(2);
}
const cp = new ControlPlane({
  etcdEndpoints: values.etcd.split(','),
  natsUrl: values.nats,
  ...(natsAuth ? { natsAuth } : {}),
  listen: values.listen,
  log,
});
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void cp.stop().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
try {
  const { address } = await cp.start();
  process.stdout.write(`${JSON.stringify({ event: 'ready', address })}\n`);
  log.info('control plane serving', { address });
} catch (err) {
  log.error('control plane failed to start', {
    error: err instanceof Error ? err.message : String(err),
  });
  await cp.stop();
  process.exit(1);
}
