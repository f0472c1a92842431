/**
 * `npm run bench -- agent-revision [--json] [--agents N] [--changes R]
 *    [--shards S] [--entries E] [--changed K]`
 *
 * The node agent's own work for the revision most revisions are: one
 * ipcache shard replaced (a pod added somewhere in the mesh, propagation's
 * scenario (a)). N agents in this process, as in a propagation agent worker
 * (default 250), each a real RevisionApplier over a ResourceStore and an
 * EmulatedDatapath holding S shards of E prefixes (default 1,024 × 5, the
 * propagation workload at 1,000 nodes). A change replaces K shards (default
 * 1; a burst's coalesced revision replaces tens). Per change every agent decodes the
 * response from its bytes (what the gRPC deserializer does), applies it and
 * encodes its ACK; no sockets. Figures, per agent and change:
 * - `cpu_us`: CPU time of this process (a pass without the profiler);
 * - `alloc_bytes`: bytes allocated, from V8's sampling heap profiler with
 *   collected objects kept (a second pass), i.e. what the young generation
 *   has to absorb; grpc-js's own allocations come on top;
 * - `held_heap_bytes`: V8 heap an agent holds after the changes (after a full
 *   GC, less the heap before the agents were made): its resource store and
 *   emulated maps — what every young-generation collection works against and
 *   a full one marks.
 */
import type { HeapProfiler } from 'node:inspector';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { compareStrings, encodeResource, type EncodedResource } from '../common/index.js';
import {
  EmulatedDatapath,
  ResourceStore,
  RevisionApplier,
  ackRequest,
  decodeResponse,
} from '../nodeagent/index.js';
import { DeltaDiscoveryRequest, TYPE_IPCACHE } from '../proto/index.js';
import { responsePart } from './lib/response-part.js';
import { numericOptions } from './lib/runner-options.js';
import { round } from './lib/stats.js';

export interface AgentRevisionOptions {
  agents?: number;
  changes?: number;
  shards?: number;
  entries?: number;
  /** shards replaced per change (default 1) */
  changed?: number;
}

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

const WARMUP_CHANGES = 50;
const monotonic = { now: () => performance.now() };

function prefixOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
}

/** Shard `s` with `count` prefixes of its own, in prefix order (as the control plane encodes them). */
function shard(s: number, count: number): EncodedResource {
  const entries = Array.from({ length: count }, (_, j) => ({
    prefix: prefixOf(s * 256 + j),
    identity: 1000 + j,
  })).sort((a, b) => compareStrings(a.prefix, b.prefix));
  return encodeResource(`ipcache/${s}`, { typeUrl: TYPE_IPCACHE, value: { shard: s, entries } });
}

async function applyEverywhere(
  appliers: readonly RevisionApplier[],
  bytes: Uint8Array,
  revision: number,
): Promise<void> {
  // grpc-js hands the deserializer a Buffer
  const received = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const applier of appliers) {
    const part = decodeResponse(received);
    const rev = { revision, nonce: part.nonce, parts: [part], receivedAt: monotonic.now() };
    const out = await applier.apply(rev);
    if (out.kind !== 'applied')
      throw new Error(`revision ${revision} rejected: ${out.detail.message}`);
    DeltaDiscoveryRequest.encode(ackRequest({ nonce: rev.nonce, ...out })).finish();
  }
}

function sampledBytes(node: SamplingNode): number {
  return node.children.reduce((n, c) => n + sampledBytes(c), node.selfSize);
}

export async function runAgentRevision(
  opts: AgentRevisionOptions = {},
): Promise<Record<string, number>> {
  const agents = opts.agents ?? 250;
  const changes = opts.changes ?? 200;
  const shards = opts.shards ?? 1024;
  const entries = opts.entries ?? 5;
  const changed = opts.changed ?? 1;
  if (entries >= 255) throw new Error('--entries must be below 255 (a change adds one)');
  if (changed > shards) throw new Error('--changed must not exceed --shards');
  const session = new Session();
  session.connect();
  try {
    const heapUsed = async (): Promise<number> => {
      await session.post('HeapProfiler.collectGarbage');
      return process.memoryUsage().heapUsed;
    };
    const heapBefore = await heapUsed();
    const appliers = Array.from(
      { length: agents },
      () => new RevisionApplier(new ResourceStore(), new EmulatedDatapath(), monotonic),
    );
    const all = Array.from({ length: shards }, (_, s) => shard(s, entries));
    let revision = 1;
    await applyEverywhere(appliers, responsePart(TYPE_IPCACHE, all, revision, true), revision);
    // Each change gives K shards one more prefix each, the shards in turn.
    let next = 0;
    const change = async (): Promise<void> => {
      const replaced: EncodedResource[] = [];
      for (let k = 0; k < changed; k++) {
        replaced.push(shard(next % shards, entries + 1 + Math.floor(next / shards)));
        next += 1;
      }
      revision += 1;
      await applyEverywhere(
        appliers,
        responsePart(TYPE_IPCACHE, replaced, revision, true),
        revision,
      );
    };
    for (let i = 0; i < WARMUP_CHANGES; i++) await change();

    const cpu0 = process.cpuUsage();
    for (let i = 0; i < changes; i++) await change();
    const cpu = process.cpuUsage(cpu0);
    const heldHeap = (await heapUsed()) - heapBefore;

    // Objects the collector has already freed count too (V8's flags; newer than @types/node's typing).
    const sampling: HeapProfiler.StartSamplingParameterType = {
      samplingInterval: 256,
      ...{ includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true },
    };
    await session.post('HeapProfiler.startSampling', sampling);
    for (let i = 0; i < changes; i++) await change();
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const n = changes * agents;
    return {
      agents,
      changes,
      shards,
      entries,
      changed,
      cpu_us: round((cpu.user + cpu.system) / n, 2),
      alloc_bytes: Math.round(sampledBytes(profile.head) / n),
      held_heap_bytes: Math.round(heldHeap / agents),
      load_avg_1m: round(loadavg()[0]!, 2),
    };
  } finally {
    session.disconnect();
  }
}

export async function agentRevisionBench(json: boolean, argv: readonly string[]): Promise<void> {
  const o = numericOptions(argv, ['agents', 'changes', 'shards', 'entries', 'changed']);
  const figures = await runAgentRevision({
    ...(o.agents !== undefined ? { agents: o.agents } : {}),
    ...(o.changes !== undefined ? { changes: o.changes } : {}),
    ...(o.shards !== undefined ? { shards: o.shards } : {}),
    ...(o.entries !== undefined ? { entries: o.entries } : {}),
    ...(o.changed !== undefined ? { changed: o.changed } : {}),
  });
  if (json) {
    process.stdout.write(`${JSON.stringify({ bench: 'agent-revision', figures })}\n`);
    return;
  }
  process.stdout.write(
    `${figures.agents} agents, ${figures.shards} shards × ${figures.entries} prefixes, ` +
      `${figures.changes} changes of ${figures.changed} shard(s): per agent and change ${figures.cpu_us} µs CPU, ` +
      `${figures.alloc_bytes} bytes allocated, ${figures.held_heap_bytes} bytes of heap held ` +
      `(load average ${figures.load_avg_1m})\n`,
  );
}
