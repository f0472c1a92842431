/**
 * `npm run bench -- datapath-maps [--json] [--entries N] [--endpoints E] [--rounds R]`
 *
 * Map programming of the eBPF datapath (needs root): one revision carrying N
 * policy entries (default 100,000) spread over E new endpoints (default 10),
 * applied to a fresh pin dir: `map_entries_per_s` = N ÷ the time of
 * `EbpfDatapath.apply` — checks, writes of the standby copy, the switch and
 * the read-back of every changed entry into the digest (for these new maps,
 * each map's digest computed in the kernel: read-back.ts
 * readWrittenPolicy): what the agent does
 * between receiving the revision and its ACK. The same writes on the other
 * copy follow after the ACK and the switch's RCU grace period
 * (`syncStandby`, which waits for it on the calling thread), timed on their
 * own (`map_replay_ms`, `map_replay_cpu_ms`). After timing, the digest is
 * checked against verify(). The median of R rounds
 * (default 3), each on its own pins, removed afterwards. The datapath
 * benchmark reports the same key for its own revision (one endpoint, timed
 * in bench/lib/ebpf-scenario.ts).
 *
 * After the rounds, the agent's periodic re-verification of such a datapath
 * (`verify_ms`: verify(), its policy maps digested in the kernel) beside a
 * full read() of it (`full_read_ms`: every map dumped and decoded, what
 * verify() did before).
 *
 * Beside it, the kernel's floor (`kernel_floor`): bench/native/maps-floor.c
 * (built with clang against libbpf) makes the same kernel calls for one copy
 * — create the E inner maps with the datapath's flags, write their entries
 * with batch updates, run the object's policy_digest on each (and, outside
 * the total, one batch lookup of each: the read-back when a digest differs)
 * — from C with nothing around
 * them, on one thread and on two (each thread writing half of every map's
 * entries, as the apply keeps two batches of a map in flight); median of 5.
 * What the apply takes beyond that is ours.
 *
 * And the agent's whole path (`agent_entries_per_s`, `agent_apply_ms`): the
 * same revision as the control plane sends it — an ipcache shard and one
 * EndpointPolicy resource per endpoint, encoded DeltaDiscoveryResponse parts —
 * from receipt of the bytes through decoding, the agent's checks and
 * translation (RevisionApplier) and the same apply, to the ACK's digest: the
 * agent's own `apply_duration_us`, on another fresh pin dir each round.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { buildNative, run } from '../hosts/index.js';
import { performance } from 'node:perf_hooks';
import { encodeResource } from '../common/index.js';
import { Direction, TYPE_ENDPOINT, TYPE_IPCACHE, Verdict } from '../proto/index.js';
import {
  EbpfDatapath,
  Libbpf,
  digestOfContents,
  ResourceStore,
  RevisionApplier,
  endpointPolicyOf,
  RevisionAssembler,
  decodeResponse,
  defaultPinDir,
  removePins,
  type DatapathChange,
} from '../nodeagent/index.js';
import { DEFAULT_OBJECT_PATH, POLICY_INNER_FLAGS } from '../nodeagent/datapath/ebpf/index.js';
import { responsePart } from './lib/response-part.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';
import { percentile, round } from './lib/stats.js';

export interface MapProgramming {
  entries: number;
  endpoints: number;
  seconds: number;
  /** CPU time (user + system) of this process during the apply: less sensitive to a loaded machine */
  cpuSeconds: number;
  entriesPerS: number;
  /** the replay on the other copy, after the ACK: wall and CPU */
  replaySeconds: number;
  replayCpuSeconds: number;
}

/** A revision of `entries` policy entries over `endpoints` new endpoints (deterministic). */
export function bigRevision(entries: number, endpoints: number): DatapathChange {
  const change: DatapathChange = {
    ipcache: { upserts: [], deletes: [] },
    endpoints: { upserts: [], deletes: [] },
    policies: [],
    services: { upserts: [], deletes: [] },
  };
  const per = Math.ceil(entries / endpoints);
  let left = entries;
  for (let e = 0; e < endpoints; e++) {
    const name = `pod-${e}`;
    const ip = `10.9.${e >> 8}.${e & 255}`;
    change.ipcache.upserts.push({
      prefix: `${ip}/32`,
      identity: 0x10100 + e,
      resource: 'ipcache/0',
    });
    change.endpoints.upserts.push({
      cluster: 'bench',
      namespace: 'default',
      name,
      identity: 0x10100 + e,
      ips: [ip],
      namedPorts: [],
      ingressEnforced: true,
      egressEnforced: true,
      resource: `endpoint/${name}`,
    });
    const n = Math.min(per, left);
    left -= n;
    const upserts = [];
    for (let i = 0; i < n; i++) {
      // Peer identities × a few ports, both directions: distinct keys.
      const port = 1000 + (i & 7);
      upserts.push({
        direction: i % 2 === 0 ? Direction.DIRECTION_INGRESS : Direction.DIRECTION_EGRESS,
        identity: 0x20100 + (i >> 3),
        protocol: 6,
        portLow: port,
        portHigh: port,
        verdict: i % 97 === 0 ? Verdict.VERDICT_DENY : Verdict.VERDICT_ALLOW,
      });
    }
    change.policies.push({
      endpoint: `bench/default/${name}`,
      resource: `endpoint/${name}`,
      upserts,
      deletes: [],
    });
  }
  return change;
}

/** A fresh datapath with room for `endpoints` endpoints of `per` entries each. */
function openSized(
  pinDir: string,
  endpoints: number,
  per: number,
  libbpf: Libbpf | undefined,
): Promise<EbpfDatapath> {
  return EbpfDatapath.open({
    pinDir,
    endpoints: Math.max(16, endpoints),
    ipcacheEntries: Math.max(1024, endpoints * 2),
    policyEntriesPerEndpoint: Math.max(1024, per),
    ...(libbpf ? { libbpf } : {}),
  });
}

/** `bigRevision` as the control plane sends it: encoded response parts (ipcache, then the endpoints, complete). */
export function bigRevisionParts(change: DatapathChange, revision = 1): Uint8Array[] {
  const shard = encodeResource('ipcache/0', {
    typeUrl: TYPE_IPCACHE,
    value: {
      shard: 0,
      entries: change.ipcache.upserts.map((u) => ({ prefix: u.prefix, identity: u.identity })),
    },
  });
  const endpoints = change.endpoints.upserts.map((ep) => {
    const name = `${ep.cluster}/${ep.namespace}/${ep.name}`;
    const entries = change.policies.find((p) => p.endpoint === name)?.upserts ?? [];
    return encodeResource(ep.resource, {
      typeUrl: TYPE_ENDPOINT,
      value: endpointPolicyOf(ep, entries),
    });
  });
  return [
    responsePart(TYPE_IPCACHE, [shard], revision, false),
    responsePart(TYPE_ENDPOINT, endpoints, revision, true),
  ];
}

/**
 * One round of the agent's whole path: a fresh pin dir, the revision's
 * encoded parts received, decoded and applied by the agent's RevisionApplier;
 * returns its apply duration (receipt of the parts → digest for the ACK).
 */
export async function measureAgentApply(opts: {
  entries: number;
  endpoints: number;
  runId: string;
  libbpf?: Libbpf;
}): Promise<{ seconds: number; entriesPerS: number }> {
  const pinDir = defaultPinDir(opts.runId, 'agent');
  const per = Math.ceil(opts.entries / opts.endpoints);
  const parts = bigRevisionParts(bigRevision(opts.entries, opts.endpoints));
  const dp = await openSized(pinDir, opts.endpoints, per, opts.libbpf);
  try {
    const monotonic = { now: () => performance.now() };
    const applier = new RevisionApplier(new ResourceStore(), dp, monotonic);
    const assembler = new RevisionAssembler();
    const receivedAt = performance.now();
    let outcome;
    for (const bytes of parts) {
      const rev = assembler.push(decodeResponse(bytes), receivedAt);
      if (rev !== undefined) outcome = await applier.apply(rev);
    }
    if (outcome?.kind !== 'applied')
      throw new Error(`the agent did not apply the revision: ${JSON.stringify(outcome)}`);
    if (dp.counts().policyEntries !== opts.entries)
      throw new Error(
        `expected ${opts.entries} entries, the datapath holds ${dp.counts().policyEntries}`,
      );
    const seconds = outcome.durationUs / 1e6;
    return { seconds, entriesPerS: opts.entries / seconds };
  } finally {
    await dp.close();
    await removePins(pinDir);
  }
}

/** One round: a fresh pin dir, the revision applied once, timed; pins removed. */
export async function measureMapProgramming(opts: {
  entries: number;
  endpoints: number;
  runId: string;
  libbpf?: Libbpf;
  signal?: AbortSignal;
}): Promise<MapProgramming> {
  const pinDir = defaultPinDir(opts.runId, 'maps');
  const per = Math.ceil(opts.entries / opts.endpoints);
  const change = bigRevision(opts.entries, opts.endpoints);
  const dp = await openSized(pinDir, opts.endpoints, per, opts.libbpf);
  try {
    opts.signal?.throwIfAborted();
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    await dp.apply(change, opts.signal ? { signal: opts.signal } : {});
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpu1 = process.cpuUsage();
    const replayStart = performance.now();
    dp.syncStandby();
    const replaySeconds = (performance.now() - replayStart) / 1000;
    const replayCpu = process.cpuUsage(cpu1);
    if (dp.counts().policyEntries !== opts.entries) {
      throw new Error(
        `expected ${opts.entries} entries, the datapath holds ${dp.counts().policyEntries}`,
      );
    }
    // The incremental digest must be the digest of what the kernel holds.
    const verified = await dp.verify();
    if (verified !== dp.digest())
      throw new Error(`digest ${dp.digest()} after apply, ${verified} from verify()`);
    return {
      entries: opts.entries,
      endpoints: opts.endpoints,
      seconds,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      entriesPerS: opts.entries / seconds,
      replaySeconds,
      replayCpuSeconds: (replayCpu.user + replayCpu.system) / 1e6,
    };
  } finally {
    await dp.close();
    await removePins(pinDir);
  }
}

/**
 * The agent's periodic re-verification of the revision's maps: verify()
 * (its policy maps digested in the kernel) against read() (every map dumped
 * and decoded, what verify() did before), each timed `rounds` times on one
 * datapath after the apply; medians. Run once, after the rounds, so their
 * garbage does not land in the timed applies.
 */
export async function measureVerify(opts: {
  entries: number;
  endpoints: number;
  runId: string;
  rounds: number;
  libbpf?: Libbpf;
}): Promise<{ verifyMs: number; fullReadMs: number }> {
  const pinDir = defaultPinDir(opts.runId, 'verify');
  const dp = await openSized(
    pinDir,
    opts.endpoints,
    Math.ceil(opts.entries / opts.endpoints),
    opts.libbpf,
  );
  try {
    await dp.apply(bigRevision(opts.entries, opts.endpoints));
    dp.syncStandby();
    const verify: number[] = [];
    const read: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      let start = performance.now();
      const verified = await dp.verify();
      verify.push(performance.now() - start);
      start = performance.now();
      const contents = await dp.read();
      read.push(performance.now() - start);
      if (verified !== dp.digest() || digestOfContents(contents) !== dp.digest())
        throw new Error(`verify() or a full read differs from the digest ${dp.digest()}`);
    }
    return { verifyMs: percentile(verify, 50), fullReadMs: percentile(read, 50) };
  } finally {
    await dp.close();
    await removePins(pinDir);
  }
}

/** bench/native/maps-floor.c, built once per source version (clang, -lbpf) into .build/bench/. */
function buildFloor(signal?: AbortSignal): Promise<string> {
  return buildNative({
    source: fileURLToPath(new URL('native/maps-floor.c', import.meta.url)),
    buildDir: fileURLToPath(new URL('../.build/bench/', import.meta.url)),
    libs: ['-lbpf'],
    ...(signal ? { signal } : {}),
  });
}

export interface KernelFloor {
  create_ms: number;
  update_ms: number;
  /** policy_digest run on each map (the datapath's read-back) */
  digest_ms: number;
  /** one batch lookup of each map (the datapath's read-back when a digest differs; not in the total) */
  lookup_ms: number;
  /** create + update + digest */
  total_ms: number;
}

/** The kernel calls of one copy's policy maps from C (see the header): one thread and two. */
export async function measureKernelFloor(opts: {
  entries: number;
  endpoints: number;
  signal?: AbortSignal;
}): Promise<{ oneThread: KernelFloor; twoThreads: KernelFloor }> {
  const binary = await buildFloor(opts.signal);
  const once = async (threads: number): Promise<KernelFloor> =>
    JSON.parse(
      await run(
        binary,
        [opts.entries, opts.endpoints, POLICY_INNER_FLAGS, threads, 5, DEFAULT_OBJECT_PATH].map(
          String,
        ),
        opts.signal ? { signal: opts.signal } : {},
      ),
    ) as KernelFloor;
  return { oneThread: await once(1), twoThreads: await once(2) };
}

export async function datapathMapsBench(json: boolean, argv: readonly string[]): Promise<void> {
  const o = numericOptions(argv, ['entries', 'endpoints', 'rounds']);
  const entries = o.entries ?? 100_000;
  const endpoints = o.endpoints ?? 10;
  const rounds = o.rounds ?? 3;
  const { signal, dispose } = interruptSignal();
  const libbpf = new Libbpf();
  const results: MapProgramming[] = [];
  const agent: { seconds: number; entriesPerS: number }[] = [];
  let floor: Awaited<ReturnType<typeof measureKernelFloor>>;
  let verify: Awaited<ReturnType<typeof measureVerify>>;
  try {
    for (let r = 0; r < rounds; r++) {
      const m = await measureMapProgramming({
        entries,
        endpoints,
        runId: `bench-maps-${process.pid}-${r}`,
        libbpf,
        signal,
      });
      results.push(m);
      const a = await measureAgentApply({
        entries,
        endpoints,
        runId: `bench-maps-${process.pid}-${r}`,
        libbpf,
      });
      agent.push(a);
      if (!json)
        process.stdout.write(
          `round ${r + 1}: ${entries} entries over ${endpoints} endpoints in ${round(m.seconds * 1000, 1)} ms (CPU ${round(m.cpuSeconds * 1000, 1)} ms) = ${Math.round(m.entriesPerS)} entries/s; standby replay after the ACK ${round(m.replaySeconds * 1000, 1)} ms (CPU ${round(m.replayCpuSeconds * 1000, 1)} ms); the agent's whole path ${round(a.seconds * 1000, 1)} ms = ${Math.round(a.entriesPerS)} entries/s\n`,
        );
    }
    verify = await measureVerify({
      entries,
      endpoints,
      runId: `bench-maps-${process.pid}-verify`,
      rounds: 5,
      libbpf,
    });
    floor = await measureKernelFloor({ entries, endpoints, signal });
  } finally {
    dispose();
  }
  const sorted = [...results].sort((a, b) => a.entriesPerS - b.entriesPerS);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const agentMedian = [...agent].sort((a, b) => a.entriesPerS - b.entriesPerS)[
    Math.floor(agent.length / 2)
  ]!;
  const figures = {
    map_entries_per_s: Math.round(median.entriesPerS),
    /** decoding, the agent's checks and translation included: receipt of the parts → the ACK's digest */
    agent_entries_per_s: Math.round(agentMedian.entriesPerS),
    agent_apply_ms: round(agentMedian.seconds * 1000, 1),
    agent_apply_ms_rounds: agent.map((a) => round(a.seconds * 1000, 1)),
    map_apply_ms: round(median.seconds * 1000, 1),
    map_apply_cpu_ms: round(median.cpuSeconds * 1000, 1),
    map_replay_ms: round(median.replaySeconds * 1000, 1),
    map_replay_cpu_ms: round(median.replayCpuSeconds * 1000, 1),
    /** verify() of the revision's maps (median of 5): the policy maps digested in the kernel */
    verify_ms: round(verify.verifyMs, 1),
    /** read() of the same maps (median of 5): every map dumped and decoded */
    full_read_ms: round(verify.fullReadMs, 1),
    entries,
    endpoints,
    /** every round's apply, in order: the first runs on code the JIT has not optimized yet */
    map_apply_ms_rounds: results.map((m) => round(m.seconds * 1000, 1)),
    kernel_floor_ms: floor.oneThread.total_ms,
    kernel_floor_2_threads_ms: floor.twoThreads.total_ms,
    kernel_floor: floor,
    load_avg_1m: round(loadavg()[0]!, 2),
  };
  if (json) process.stdout.write(`${JSON.stringify({ bench: 'datapath-maps', figures })}\n`);
  else
    process.stdout.write(
      `median: ${figures.map_entries_per_s} entries/s (${figures.map_apply_ms} ms, CPU ${figures.map_apply_cpu_ms} ms; replay after the ACK ${figures.map_replay_ms} ms, CPU ${figures.map_replay_cpu_ms} ms), load ${figures.load_avg_1m}\n` +
        `the agent's whole path (decode, checks, translation, apply, digest): ${figures.agent_entries_per_s} entries/s (${figures.agent_apply_ms} ms)\n` +
        `verify() afterwards ${figures.verify_ms} ms (a full read() ${figures.full_read_ms} ms)\n` +
        `kernel floor (C, same calls for one copy): ${floor.oneThread.total_ms} ms on one thread (create ${floor.oneThread.create_ms}, update ${floor.oneThread.update_ms}, in-kernel digest ${floor.oneThread.digest_ms}; a batch lookup instead: ${floor.oneThread.lookup_ms}), ${floor.twoThreads.total_ms} ms on two\n`,
    );
}
