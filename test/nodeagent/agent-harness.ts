// Test harness for the node agent against ScriptedControlPlane, a real gRPC
// server that stands in for the control plane.
import { Digest, type EncodedResource } from '../../common/index.js';
import {
  EmulatedDatapath,
  EmulatedMaps,
  NodeAgent,
  type NodeAgentEventName,
  type NodeAgentEvents,
} from '../../nodeagent/index.js';
import { TYPE_ENDPOINT, TYPE_IPCACHE, TYPE_SERVICE } from '../../proto/index.js';
import { AsyncQueue } from './async-queue.js';
import { part } from './fixtures.js';
import {
  ScriptedControlPlane,
  type ScriptedOptions,
  type ScriptedStream,
} from './scripted-control-plane.js';

export const EMPTY = new Digest().toString();
const cleanups: (() => Promise<void>)[] = [];

/** Stops every agent and server `setup` created; call from afterEach. */
export async function teardown(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export interface Harness {
  cp: ScriptedControlPlane;
  agent: NodeAgent;
  datapath: EmulatedDatapath;
  maps: EmulatedMaps;
  events<K extends NodeAgentEventName>(name: K): AsyncQueue<NodeAgentEvents[K]>;
}

export async function setup(
  opts: {
    cp?: ScriptedOptions;
    capacity?: { ipcacheEntries?: number; endpoints?: number; policyEntriesPerEndpoint?: number };
    verifyIntervalMs?: number;
  } = {},
): Promise<Harness> {
  const cp = await ScriptedControlPlane.start(opts.cp);
  cleanups.push(() => cp.close());
  const maps = new EmulatedMaps();
  const datapath = new EmulatedDatapath({ ...opts.capacity, maps });
  const agent = new NodeAgent({
    server: cp.address,
    node: { id: 'eu-1', cluster: 'eu' },
    datapath,
    verifyIntervalMs: opts.verifyIntervalMs ?? 0,
    backoff: { initialMs: 10, maxMs: 50 },
  });
  const queues = new Map<string, AsyncQueue<unknown>>();
  const names: NodeAgentEventName[] = [
    'connected',
    'disconnected',
    'revisionApplied',
    'revisionRejected',
    'verified',
  ];
  for (const name of names) {
    const q = new AsyncQueue<unknown>();
    queues.set(name, q);
    agent.on(name, (e) => q.push(e));
  }
  agent.start();
  cleanups.push(() => agent.stop());
  return {
    cp,
    agent,
    datapath,
    maps,
    events: <K extends NodeAgentEventName>(name: K) =>
      queues.get(name) as AsyncQueue<NodeAgentEvents[K]>,
  };
}

/** Opens the first stream and swallows its first request. */
export async function connected(h: Harness): Promise<ScriptedStream> {
  const s = await h.cp.nextStream();
  await s.nextRequest();
  return s;
}

/** Sends a whole revision as one complete part per resource type and returns the agent's answer. */
export async function revision(
  s: ScriptedStream,
  rev: number,
  resources: EncodedResource[],
  removed: { typeUrl: string; name: string }[] = [],
) {
  const types = [TYPE_IPCACHE, TYPE_SERVICE, TYPE_ENDPOINT].filter(
    (t) => resources.some((r) => r.typeUrl === t) || removed.some((r) => r.typeUrl === t),
  );
  if (types.length === 0) types.push(TYPE_IPCACHE);
  types.forEach((typeUrl, i) =>
    s.send(
      part({
        typeUrl,
        revision: rev,
        nonce: `r${rev}-${i}`,
        resources: resources.filter((r) => r.typeUrl === typeUrl),
        removed: removed.filter((r) => r.typeUrl === typeUrl).map((r) => r.name),
        complete: i === types.length - 1,
      }),
    ),
  );
  return { answer: await s.nextRequest(), nonce: `r${rev}-${types.length - 1}` };
}
