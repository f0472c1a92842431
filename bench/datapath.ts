/**
 * `npm run bench -- datapath [--json] [--seconds S] [--concurrency C] [--rounds R] [--cpu N|none] [--only NAMES]`
 *
 * Short-lived TCP connections between two pods on one node (test hosts,
 * hosts/): the client pod's mp-host runs C loops of connect → 1-byte request
 * → 1-byte response → server closes, for S seconds; connections/s = completed
 * ÷ S, latency of each whole connection p50/p99. Scenarios, each on its own
 * fresh test bed (namespaces made for it and removed after it):
 * - `baseline`: no program, no rules;
 * - `iptables_N` (10 / 1,000 / 10,000 rules): iptables-legacy in the node's
 *   namespace (never the host's), FORWARD policy DROP, ESTABLISHED,RELATED
 *   accepted first, then N−1 ACCEPT rules for other sources and last the one
 *   that allows the client, so every new connection's SYN walks all N;
 * - `ebpf_N` (10 / 10,000 / 100,000 policy entries), when the eBPF datapath
 *   programmed and attached as an agent does (bench/lib/ebpf-scenario.ts).
 * Rounds alternate the scenario order; per scenario the median of its rounds
 * is reported. Ratios divide by the baseline of the same run.
 *
 * Both pods' processes run pinned to one CPU (`--cpu`, default the last one;
 * `none` lets the scheduler place them). Unpinned, every request and answer
 * wakes a thread on the other CPU, and on this VM an idle CPU's wake-up adds
 * up to ~1.5 ms: the tail then decides throughput (measured 2026-12-06: p50
 * 0.05 ms, p99 1.5 ms, 5.6–8.5k conn/s, iptables with 10,000 rules at 1.7× the
 * baseline in one run and 0.74× in the next), so the ratios were noise. Pinned,
 * client, server and their softirq work share one CPU and the figures measure
 * the per-packet cost (baseline ~26k conn/s, p99 0.07 ms).
 */
import { availableParallelism, loadavg } from 'node:os';
import { createTestbed, newRunId, run, type Testbed, type TestbedSpec } from '../hosts/index.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';
import { round } from './lib/stats.js';
import { ebpfScenarios } from './lib/ebpf-scenario.js';

export const SERVER_PORT = 8080;
export const CLIENT = 'bench/load/client';
export const SERVER = 'bench/load/server';

export interface Scenario {
  name: string;
  /** prepares the bed; returns an undo (the bed is destroyed after anyway) */
  setup(bed: Testbed, signal: AbortSignal | undefined): Promise<void>;
  /** releases what setup holds outside the bed (the bed is destroyed after) */
  teardown?(): Promise<void>;
}

export interface DatapathBenchOptions {
  seconds?: number;
  concurrency?: number;
  rounds?: number;
  /** run only these scenarios (exact names, or a family: `iptables`, `ebpf`); the baseline always runs */
  only?: string[];
  /** pin both pods' processes to this CPU; null: no pinning (default: the last CPU) */
  cpu?: number | null;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface ScenarioFigures {
  connPerS: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
}

/** Two pods on one node: the client and the server on SERVER_PORT. */
export function benchSpec(): TestbedSpec {
  return {
    runId: newRunId(),
    nodes: [{ cluster: 'bench', name: 'node' }],
    pods: [
      {
        cluster: 'bench',
        namespace: 'load',
        name: 'client',
        node: 'node',
        ip: '10.77.0.1',
        tcp: [],
        udp: [],
      },
      {
        cluster: 'bench',
        namespace: 'load',
        name: 'server',
        node: 'node',
        ip: '10.77.0.2',
        tcp: [SERVER_PORT],
        udp: [],
      },
    ],
    world: [],
    podCidrs: ['10.77.0.0/16'],
  };
}

/** iptables-legacy rules in the node namespace: ESTABLISHED first, the matching rule last. */
function iptablesScenario(rules: number): Scenario {
  return {
    name: `iptables_${rules}`,
    async setup(bed, signal) {
      const client = bed.pod(CLIENT).ip;
      const server = bed.pod(SERVER).ip;
      const lines = [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD DROP [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        '-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
      ];
      for (let i = 0; i < rules - 1; i++)
        lines.push(
          `-A FORWARD -s 10.250.${(i >> 8) & 255}.${i & 255}/32 -d ${server}/32 -p tcp --dport ${SERVER_PORT} -j ACCEPT`,
        );
      lines.push(
        `-A FORWARD -s ${client}/32 -d ${server}/32 -p tcp --dport ${SERVER_PORT} -j ACCEPT`,
      );
      lines.push('COMMIT', '');
      const netns = bed.node('bench', 'node').netns;
      await run('ip', ['netns', 'exec', netns, 'iptables-legacy-restore'], {
        input: lines.join('\n'),
        signal,
      });
    },
  };
}

async function measure(
  scenario: Scenario,
  opts: Required<Pick<DatapathBenchOptions, 'seconds' | 'concurrency'>> & {
    cpu: number | null;
    signal?: AbortSignal | undefined;
  },
): Promise<ScenarioFigures> {
  const bed = await createTestbed(benchSpec(), {
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.cpu === null ? {} : { hostCpu: opts.cpu }),
  });
  try {
    await scenario.setup(bed, opts.signal);
    const client = bed.host(CLIENT);
    const server = bed.pod(SERVER).ip;
    // Warm-up: ARP, caches, the programs' first runs.
    await client.load(server, SERVER_PORT, 500, opts.concurrency, 2000);
    const r = await client.load(server, SERVER_PORT, opts.seconds * 1000, opts.concurrency, 2000);
    return {
      connPerS: r.ok / opts.seconds,
      p50Ms: r.p50Us / 1000,
      p99Ms: r.p99Us / 1000,
      failed: r.timeout + r.refused + r.other,
    };
  } finally {
    await scenario.teardown?.();
    await bed.destroy();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export async function runDatapathBench(opts: DatapathBenchOptions = {}): Promise<{
  figures: Record<string, number>;
  scenarios: Record<string, ScenarioFigures>;
  skipped: string[];
}> {
  const seconds = opts.seconds ?? 5;
  const concurrency = opts.concurrency ?? 1;
  const rounds = opts.rounds ?? 3;
  const cpu = opts.cpu === undefined ? availableParallelism() - 1 : opts.cpu;
  const ebpf = await ebpfScenarios([10, 10_000, 100_000]);
  const all: Scenario[] = [
    { name: 'baseline', setup: () => Promise.resolve() },
    ...ebpf.scenarios,
    ...[10, 1_000, 10_000].map(iptablesScenario),
  ];
  const only = opts.only;
  const scenarios = all.filter(
    (s) =>
      s.name === 'baseline' ||
      only === undefined ||
      only.some((o) => s.name === o || s.name.startsWith(`${o}_`)),
  );
  const samples = new Map<string, ScenarioFigures[]>();
  const figures: Record<string, number> = { load_avg_1m_before: round(loadavg()[0]!, 2) };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const s of order) {
      opts.signal?.throwIfAborted();
      const f = await measure(s, { seconds, concurrency, cpu, signal: opts.signal });
      opts.log?.(
        `  round ${r + 1} ${s.name.padEnd(14)} ${Math.round(f.connPerS)} conn/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, failed ${f.failed}`,
      );
      samples.set(s.name, [...(samples.get(s.name) ?? []), f]);
    }
  }
  const result: Record<string, ScenarioFigures> = {};
  for (const [name, list] of samples) {
    result[name] = {
      connPerS: round(median(list.map((x) => x.connPerS)), 0),
      p50Ms: round(median(list.map((x) => x.p50Ms)), 3),
      p99Ms: round(median(list.map((x) => x.p99Ms)), 3),
      failed: list.reduce((a, x) => a + x.failed, 0),
    };
  }
  const base = result['baseline']!.connPerS;
  const keyOf = (n: number): string => (n >= 1000 ? `${n / 1000}k` : String(n));
  for (const [name, f] of Object.entries(result)) {
    figures[`${name}_conn_per_s`] = f.connPerS;
    figures[`${name}_p50_ms`] = f.p50Ms;
    figures[`${name}_p99_ms`] = f.p99Ms;
    figures[`${name}_failed`] = f.failed;
    const m = /^(ebpf|iptables)_(\d+)$/.exec(name);
    if (m) figures[`conn_ratio_${m[1]}_${keyOf(Number(m[2]))}`] = round(f.connPerS / base, 3);
  }
  const perS = ebpf.mapEntriesPerS();
  if (perS !== undefined) figures['map_entries_per_s'] = perS;
  figures['seconds_per_scenario'] = seconds;
  figures['concurrency'] = concurrency;
  figures['pinned_cpu'] = cpu ?? -1;
  figures['rounds'] = rounds;
  figures['load_avg_1m_after'] = round(loadavg()[0]!, 2);
  return { figures, scenarios: result, skipped: ebpf.skipped === undefined ? [] : [ebpf.skipped] };
}

export async function datapathBench(json: boolean, argv: readonly string[]): Promise<void> {
  const { value: onlyArg, rest: afterOnly } = takeOption(argv, '--only');
  const only = onlyArg?.split(',');
  const { value: cpuArg, rest } = takeOption(afterOnly, '--cpu');
  const cpu = parseCpu(cpuArg);
  const { seconds, concurrency, rounds } = numericOptions(rest, [
    'seconds',
    'concurrency',
    'rounds',
  ]);
  const interrupt = interruptSignal();
  const out = json ? process.stderr : process.stdout;
  try {
    const r = await runDatapathBench({
      ...(seconds !== undefined ? { seconds } : {}),
      ...(concurrency !== undefined ? { concurrency: Math.round(concurrency) } : {}),
      ...(rounds !== undefined ? { rounds: Math.round(rounds) } : {}),
      ...(only !== undefined ? { only } : {}),
      ...(cpu !== undefined ? { cpu } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
      signal: interrupt.signal,
    });
    const base = r.scenarios['baseline']!.connPerS;
    out.write('datapath: short TCP connections between two pods on one node (medians of rounds)\n');
    for (const [name, f] of Object.entries(r.scenarios))
      out.write(
        `  ${name.padEnd(16)} ${String(f.connPerS).padStart(7)} conn/s  ×${round(f.connPerS / base, 3)}  ` +
          `p50 ${f.p50Ms} ms  p99 ${f.p99Ms} ms  failed ${f.failed}\n`,
      );
    for (const s of r.skipped) out.write(`  skipped: ${s}\n`);
    if (json)
      process.stdout.write(`${JSON.stringify({ bench: 'datapath', figures: r.figures })}\n`);
  } finally {
    interrupt.dispose();
  }
}

/** `--name VALUE` taken out of argv (the rest goes to numericOptions). */
function takeOption(
  argv: readonly string[],
  name: string,
): { value: string | undefined; rest: readonly string[] } {
  const i = argv.indexOf(name);
  if (i < 0) return { value: undefined, rest: argv };
  return { value: argv[i + 1], rest: argv.filter((_, j) => j !== i && j !== i + 1) };
}

function parseCpu(v: string | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n >= availableParallelism())
    throw new Error(
      `--cpu must be a CPU number below ${availableParallelism()} or "none", not ${v}`,
    );
  return n;
}
