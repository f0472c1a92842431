// Composition root of a control plane replica.
//   node --import tsx controlplane/main.ts --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]
//        (--tls-ca FILE --tls-cert FILE --tls-key FILE | --insecure)
// --nats-creds: a JSON file {"user","pass"} (mode 0600, written by `meshctl up`),
// so the password never appears on a command line. mTLS is the default: plain
// text needs the explicit --insecure (local experiments only).
// Prints one JSON line on stdout when serving: {"event":"ready","address":"127.0.0.1:PORT"}.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MeshError, jsonLogger } from '../common/index.js';
import { readTlsMaterial, type TlsMaterial } from '../common/tls/index.js';
import { ControlPlane } from './control-plane.js';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string' },
    nats: { type: 'string' },
    'nats-creds': { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:0' },
    'tls-ca': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    insecure: { type: 'boolean', default: false },
  },
});
const tlsFlags = [values['tls-ca'], values['tls-cert'], values['tls-key']];
const tlsComplete = tlsFlags.every((v) => v !== undefined && v !== '');
const tlsAny = tlsFlags.some((v) => v !== undefined);
if (!values.etcd || !values.nats || values.insecure === tlsAny || (tlsAny && !tlsComplete)) {
  process.stderr.write(
    [
      'usage: controlplane --etcd URL[,URL] --nats URL [--nats-creds FILE] [--listen HOST:PORT]',
      '                    (--tls-ca FILE --tls-cert FILE --tls-key FILE | --insecure)',
      '  mTLS needs all three files; --insecure (plain text, no client checks) is for local experiments',
      '',
    ].join('\n'),
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
let tls: TlsMaterial | 'insecure' = 'insecure';
try {
  natsAuth = values['nats-creds'] ? await readNatsAuth(values['nats-creds']) : undefined;
  if (tlsComplete) {
    tls = await readTlsMaterial({
      ca: values['tls-ca']!,
      cert: values['tls-cert']!,
      key: values['tls-key']!,
    });
  } else {
    log.warn('serving plain text (--insecure): any local process can fetch any snapshot');
  }
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
  tls,
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
