// Many gRPC clients in one process, for the gRPC floor benchmark:
//   node --import tsx bench/lib/floor-worker.ts --plan FILE   (FILE: a FloorPlan)
// Each client has its own channel (a local subchannel pool, so its own
// TCP + mTLS connection, like a node agent), opens one bidirectional stream,
// sends a hello and answers every server message with `answerBytes` bytes, as
// an agent answers a push with its ACK. At most 20 are connecting at a time.
// stdout: {"event":"ready","connections":n} once every client received its
// first message. SIGTERM closes them all and exits.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { clientTransport, readTlsMaterial } from '../../common/tls/index.js';
import { FLOOR_SERVICE, type FloorPlan } from './floor-service.js';

const OUTSTANDING = 20;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { plan: { type: 'string' } }, strict: true });
  if (!values.plan) {
    process.stderr.write('usage: floor-worker.ts --plan FILE\n');
    return 2;
  }
  const plan = JSON.parse(await readFile(values.plan, 'utf8')) as FloorPlan;
  const transport = clientTransport(
    await readTlsMaterial({ ca: plan.ca, cert: plan.cert, key: plan.key }),
  );
  const Client = grpc.makeGenericClientConstructor(FLOOR_SERVICE, 'Floor');
  const answer = Buffer.alloc(plan.answerBytes, 1);
  const clients: grpc.Client[] = [];
  let started = 0;
  let first = 0;
  for (let i = 0; i < plan.connections; i++) {
    const client = new Client(plan.server, transport.credentials, {
      ...transport.options,
      'grpc.use_local_subchannel_pool': 1,
      'grpc.enable_retries': 0,
      'grpc.enable_channelz': 0,
    });
    clients.push(client);
    const call = (
      client as unknown as Record<string, () => grpc.ClientDuplexStream<Buffer, Buffer>>
    ).echo!.call(client);
    let got = false;
    call.on('data', () => {
      if (!got) {
        got = true;
        first += 1;
        if (first === plan.connections)
          process.stdout.write(`${JSON.stringify({ event: 'ready', connections: first })}\n`);
      }
      call.write(answer);
    });
    call.on('error', () => undefined);
    call.write(answer);
    started += 1;
    while (started - first >= OUTSTANDING) await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((resolve) => process.once('SIGTERM', resolve));
  for (const c of clients) c.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`floor-worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
