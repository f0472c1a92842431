import type { Command } from 'commander';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatIssue } from '../../common/index.js';
import { loadMeshFolder } from '../../clusters/src/index.js';
import { parseDuration } from '../../nodeagent/index.js';
import {
  createTestbed,
  newRunId,
  testbedSpecOf,
  type Outcome,
  type Testbed,
} from '../../hosts/index.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { LocalMesh, ebpfAgentArgs } from '../local-mesh.js';
import { compileProbes, readProbes, type Probe, type ProbeResult } from '../probes.js';
import { flowJson, type FlowJson } from '../flow-json.js';
import { VerdictWatch } from '../verdict-watch.js';

interface LabOptions {
  manifests: string;
  probes: string;
  timeout: string;
  datapath: string;
  json?: boolean;
}

/** DESIGN.md's words for what a connection attempt saw. */
export type Observed = 'connected' | 'timeout' | 'refused';

/** One lab answer (DESIGN.md): `allowed` is what the kernel let through. */
export interface LabResult extends Probe {
  allowed: boolean | null;
  /** the compiled decision, as `simulate` gives it */
  decision?: ProbeResult['decision'];
  observed: Observed | null;
  /** the datapath's verdict event for this probe (as `observe --json` prints it); null if none arrived */
  verdict: FlowJson | null;
  /** the compiled verdict (as `simulate` answers it) */
  compiled: { allowed: boolean | null; decision?: ProbeResult['decision']; reason: string };
  reason: string;
  /** true when the observed outcome is not the compiled verdict */
  mismatch: boolean;
}

export function registerLab(program: Command): void {
  program
    .command('lab')
    .description(
      'the whole mesh on the real kernel: every pod a namespace host, every probe a real connection',
    )
    .requiredOption('--manifests <dir>', 'manifest folder (same format as --clusters)')
    .requiredOption('--probes <file>', 'probes file (YAML or JSON)')
    .option('--timeout <d>', 'per probe: TCP handshake or UDP reply within', '2s')
    .option('--datapath <kind>', 'only ebpf', 'ebpf')
    .option('--json', 'one JSON document on stdout')
    .action(async (opts: LabOptions) => {
      await lab(opts);
    });
}

async function lab(opts: LabOptions): Promise<void> {
  if (opts.datapath !== 'ebpf')
    throw new CliExit(EXIT.usage, `lab runs on the eBPF datapath only, not ${opts.datapath}`);
  if (process.getuid?.() !== 0)
    throw new CliExit(
      EXIT.usage,
      'lab needs root (CAP_NET_ADMIN to make network namespaces, CAP_BPF to load programs)',
    );
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(opts.timeout);
  } catch (err) {
    throw new CliExit(EXIT.usage, `--timeout: ${(err as Error).message}`);
  }
  const dir = resolve(opts.manifests);
  const loaded = await loadMeshFolder(dir);
  if (!loaded.ok)
    throw new CliExit(
      EXIT.usage,
      `${loaded.errors.length} validation error(s), no results:\n${loaded.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`,
    );
  const clusters = loaded.value.clusters;
  const probes = await readProbes(opts.probes, clusters);
  const compiled = compileProbes(clusters, probes);
  const runId = newRunId();
  let spec;
  try {
    spec = testbedSpecOf(runId, clusters, probes);
  } catch (err) {
    throw new CliExit(EXIT.usage, `${opts.probes}: ${(err as Error).message}`);
  }
  const say = (line: string): void => void process.stderr.write(`meshctl lab: ${line}\n`);
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let bed: Testbed | undefined;
  let mesh: LocalMesh | undefined;
  try {
    say(
      `run ${runId}: ${spec.nodes.length} nodes, ${spec.pods.length} pods, ${spec.world.length} world peers`,
    );
    bed = await createTestbed(spec, { signal: interrupt.signal });
    const testbed = bed;
    mesh = await LocalMesh.start({
      clusters,
      stateDir: await mkdtemp(join(tmpdir(), 'meshplane-lab-')),
      datapath: 'ebpf',
      agentArgs: ebpfAgentArgs(testbed),
      signal: interrupt.signal,
    });
    const revision = await mesh.waitConverged(spec.pods.length, { signal: interrupt.signal });
    // Agents attach to an endpoint's veth once they see its route; wait for every pod.
    await waitAttached(testbed, interrupt.signal);
    say(`mesh converged at revision ${revision}, programs attached to every pod; probing`);
    const verdicts = await VerdictWatch.start(
      { address: mesh.address, stateDir: mesh.stateDir },
      { signal: interrupt.signal },
    );
    const results: LabResult[] = [];
    try {
      for (const [i, probe] of probes.entries())
        results.push(await runProbe(testbed, verdicts, probe, compiled[i]!, timeoutMs));
    } finally {
      verdicts.stop();
    }
    report(results, opts.json ?? false);
    const mismatches = results.filter((r) => r.mismatch).length;
    const expectMisses = results.filter(
      (r) => r.expect !== undefined && r.allowed !== null && r.allowed !== (r.expect === 'allow'),
    ).length;
    if (mismatches > 0)
      throw new CliExit(
        EXIT.failed,
        `${mismatches} probe(s): the kernel did not do what the policy compiles to`,
      );
    if (expectMisses > 0)
      throw new CliExit(EXIT.failed, `${expectMisses} probe(s) did not match their expect`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await mesh?.stop();
    await bed?.destroy();
  }
}

async function waitAttached(bed: Testbed, signal: AbortSignal): Promise<void> {
  const end = Date.now() + 60_000;
  let missing = bed.plan.pods.map((p) => `${p.cluster}/${p.namespace}/${p.name}`);
  while (missing.length > 0) {
    const still: string[] = [];
    for (const key of missing) if (!(await bed.programsAttached(key, { signal }))) still.push(key);
    missing = still;
    if (missing.length === 0) return;
    if (Date.now() > end)
      throw new CliExit(EXIT.failed, `no programs attached after 60 s for: ${missing.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const IPV4 = /^\d+\.\d+\.\d+\.\d+$/;

/** DESIGN.md's words: an ICMP unreachable counts as refused (the network said no at once). */
function observedOf(outcome: Outcome): Observed | null {
  if (outcome === 'connected' || outcome === 'timeout' || outcome === 'refused') return outcome;
  return outcome === 'unreachable' ? 'refused' : null;
}

async function runProbe(
  bed: Testbed,
  verdicts: VerdictWatch,
  probe: Probe,
  compiled: ProbeResult,
  timeoutMs: number,
): Promise<LabResult> {
  const base = {
    ...probe,
    ...(compiled.decision ? { decision: compiled.decision } : {}),
    compiled: {
      allowed: compiled.allowed,
      ...(compiled.decision ? { decision: compiled.decision } : {}),
      reason: compiled.reason,
    },
  };
  if (probe.protocol === 'SCTP')
    return {
      ...base,
      allowed: null,
      observed: null,
      verdict: null,
      reason: 'SCTP: this kernel has no SCTP',
      mismatch: false,
    };
  const addressOf = (x: string): string => (IPV4.test(x) ? x : bed.pod(x).ip);
  const src = addressOf(probe.from);
  const dst = addressOf(probe.to);
  const mark = verdicts.mark();
  const r = await bed.probe(probe.from, probe.to, probe.port, probe.protocol, timeoutMs);
  const observed = observedOf(r.outcome);
  const event = await verdicts.verdictFor(
    mark,
    { srcIp: src, dstIp: dst, dstPort: probe.port, protocol: probe.protocol },
    { destinationIsPod: !IPV4.test(probe.to) },
  );
  // A probe that could not be made (a local error) is a failure, never a silent pass.
  const allowed = observed === null ? null : r.outcome === 'connected';
  const mismatch = observed === null || (compiled.allowed !== null && compiled.allowed !== allowed);
  const seen =
    r.outcome === 'connected'
      ? `connected in ${(r.micros / 1000).toFixed(1)} ms`
      : r.outcome === 'timeout'
        ? `no answer within ${timeoutMs} ms`
        : r.outcome;
  return {
    ...base,
    allowed,
    observed,
    verdict: event ? flowJson(event) : null,
    reason: `${seen}; ${event ? `datapath: ${flowJson(event).summary}` : 'no datapath verdict event'}; compiled: ${compiled.reason}`,
    mismatch,
  };
}

function report(results: LabResult[], json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify({ apiVersion: 'meshplane/v1', results })}\n`);
    return;
  }
  for (const r of results) {
    const verdict = r.allowed === null ? 'UNKNOWN' : r.allowed ? 'ALLOWED' : 'DENIED';
    process.stdout.write(
      `${verdict.padEnd(8)} ${r.from} → ${r.to}:${r.port}/${r.protocol}  ${r.reason}${r.mismatch ? '  (MISMATCH)' : ''}\n`,
    );
  }
}
