// Composition root of a control plane replica.
//   node --import tsx controlplane/main.ts --etcd URL[,URL] --nats URL [--listen HOST:PORT]
// Prints one JSON line on stdout when serving: {"event":"ready","address":"127.0.0.1:PORT"}.
import { parseArgs } from 'node:util';
import { jsonLogger } from '../common/index.js';
import { ControlPlane } from './control-plane.js';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string' },
    nats: { type: 'string' },
    listen: { type: 'string', default: '127.0.0.1:0' },
  },
});
if (!values.etcd || !values.nats) {
  process.stderr.write('usage: controlplane --etcd URL[,URL] --nats URL [--listen HOST:PORT]\n');
  process.exit(2);
}
const log = jsonLogger({ component: 'controlplane' });
const cp = new ControlPlane({
  etcdEndpoints: values.etcd.split(','),
  natsUrl: values.nats,
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
