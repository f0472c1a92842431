// Many node agents in one process, for the propagation benchmark:
//   node --import tsx bench/lib/agent-worker.ts --plan FILE
// FILE: {"server":"HOST:PORT","ca":PATH,"agents":[{"cluster","node","cert","key"}]}.
// Each agent is a real NodeAgent with an EmulatedDatapath, its own gRPC
// channel (a local subchannel pool, so no connection is shared) and its own
// mTLS certificate. At most 20 are connecting at a time, so the control
// plane sees a fleet coming up, not one burst of handshakes and full syncs. stdout, JSON lines:
// {"event":"progress","connected":n,"applied":n,"rejected":n} every second
// while starting, then {"event":"ready","agents":n} once every agent has
// applied a revision; afterwards {"event":"rejected",...} for any NACK.
// SIGTERM stops every agent and exits.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { clientTransport, readTlsMaterial } from '../../common/tls/index.js';
import { EmulatedDatapath, NodeAgent, ShardPool } from '../../nodeagent/index.js';

export interface AgentPlan {
  server: string;
  ca: string;
  agents: { cluster: string; node: string; cert: string; key: string }[];
}

/**
 * Full re-reads of the datapath every 10 min instead of the agent's default
 * 60 s: on real nodes each agent has its own CPU, here a thousand emulated
 * agents re-hashing every map each minute would take a core of this
 * 2-core machine by themselves (and starve the event loops that answer
 * keepalive pings).
 */
const VERIFY_INTERVAL_MS = 600_000;

/** agents started but not yet applied, at most: a fleet coming up, not a handshake storm */
const OUTSTANDING = 20;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { plan: { type: 'string' } }, strict: true });
  if (!values.plan) {
    process.stderr.write('usage: agent-worker.ts --plan FILE\n');
    return 2;
  }
  const plan = JSON.parse(await readFile(values.plan, 'utf8')) as AgentPlan;
  const out = (o: Record<string, unknown>): void => {
    process.stdout.write(`${JSON.stringify(o)}\n`);
  };
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  process.once('SIGINT', () => stop.abort());

  const agents: NodeAgent[] = [];
  // Every agent here holds the same mesh's shards and prefixes: one copy each for the process.
  const prefixPool = new Map<string, string>();
  const shardPool = new ShardPool();
  let connected = 0;
  let applied = 0;
  let rejected = 0;
  let ready = false;
  let reported = 0;
  const progress = setInterval(
    () => out({ event: 'progress', connected, applied, rejected }),
    1_000,
  );
  const checkReady = (): void => {
    if (ready || applied < plan.agents.length) return;
    ready = true;
    clearInterval(progress);
    out({ event: 'ready', agents: agents.length });
  };
  for (let i = 0; i < plan.agents.length && !stop.signal.aborted; i++) {
    const a = plan.agents[i]!;
    const transport = clientTransport(
      await readTlsMaterial({ ca: plan.ca, cert: a.cert, key: a.key }),
    );
    const agent = new NodeAgent({
      server: plan.server,
      node: { id: a.node, cluster: a.cluster },
      credentials: transport.credentials,
      channelOptions: { ...transport.options, 'grpc.use_local_subchannel_pool': 1 },
      datapath: new EmulatedDatapath({ prefixPool }),
      shardPool,
      verifyIntervalMs: VERIFY_INTERVAL_MS,
    });
    let first = true;
    agent.on('connected', () => void (connected += 1));
    agent.on('disconnected', (e) => {
      if (e.wasConnected) connected -= 1;
      // A few reasons on stderr: why agents drop is part of the result.
      if (e.error && reported < 10) {
        reported += 1;
        process.stderr.write(
          `${a.cluster}/${a.node} stream ended: ${e.error.code} ${e.error.message}\n`,
        );
      }
    });
    agent.on('revisionApplied', () => {
      if (!first) return;
      first = false;
      applied += 1;
      checkReady();
    });
    agent.on('revisionRejected', (e) => {
      rejected += 1;
      out({ event: 'rejected', node: `${a.cluster}/${a.node}`, message: e.detail.message });
    });
    agents.push(agent);
    agent.start();
    while (agents.length - applied >= OUTSTANDING && !stop.signal.aborted)
      await new Promise((r) => setTimeout(r, 10));
  }
  if (!stop.signal.aborted)
    await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
  clearInterval(progress);
  await Promise.all(agents.map((a) => a.stop()));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`agent-worker: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
