/**
 * `npm run bench -- datapath-prog [--json] [--entries N] [--repeat R]` (root)
 *
 * The eBPF programs' own cost per packet, without the network stack or the
 * scheduler around them: the datapath benchmark's test bed and eBPF scenario
 * (client → server:8080/TCP allowed on the server's ingress among N entries),
 * then each attached program run R times by the kernel on one crafted packet
 * (BPF_PROG_TEST_RUN through `bpftool prog run`), which reports the mean time
 * per run. The first run of a forward packet creates its conntrack entry, so
 * the R runs measure the established paths (since layout 3 a forward packet
 * of an established flow takes the verdict its entry remembers while the
 * revision is unchanged: the policy lookups of a flow's first packet are not
 * measured here):
 * - `egress_forward_ns`: client → server on the client's veth (from_endpoint,
 *   egress not enforced: remembered verdict, conntrack refreshed);
 * - `ingress_forward_ns`: client → server on the server's veth (to_endpoint,
 *   ingress enforced among N entries: remembered verdict, conntrack refreshed);
 * - `egress_reply_ns`: server → client on the server's veth (from_endpoint:
 *   a reply of the flow the ingress admitted, passes on conntrack).
 * Less sensitive to a busy machine than connections/s (one CPU, no wake-ups),
 * so it is what program changes are compared with.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestbed, run, type Testbed } from '../hosts/index.js';
import { benchSpec, CLIENT, SERVER, SERVER_PORT } from './datapath.js';
import { ebpfScenarios } from './lib/ebpf-scenario.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';

export interface DatapathProgOptions {
  entries?: number;
  repeat?: number;
  signal?: AbortSignal;
}

/** Ethernet + IPv4 + TCP (ACK) from src:sport to dst:dport, checksums left zero (the programs do not check them). */
export function tcpPacket(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(14 + 20 + 20);
  b.writeUInt16BE(0x0800, 12);
  const ip = 14;
  b[ip] = 0x45;
  b.writeUInt16BE(40, ip + 2);
  b[ip + 8] = 64;
  b[ip + 9] = 6;
  src.split('.').forEach((o, i) => (b[ip + 12 + i] = Number(o)));
  dst.split('.').forEach((o, i) => (b[ip + 16 + i] = Number(o)));
  const tcp = ip + 20;
  b.writeUInt16BE(sport, tcp);
  b.writeUInt16BE(dport, tcp + 2);
  b[tcp + 12] = 5 << 4;
  b[tcp + 13] = 0x10;
  return b;
}

async function programId(
  bed: Testbed,
  pod: string,
  hook: 'ingress' | 'egress',
  signal?: AbortSignal,
): Promise<number> {
  const p = bed.pod(pod);
  const out = await run('tc', ['-n', p.nodeNetns, 'filter', 'show', 'dev', p.hostIfname, hook], {
    signal,
  });
  const m = / id (\d+) /.exec(out);
  if (!m) throw new Error(`datapath-prog: no program on ${p.hostIfname} ${hook}: ${out}`);
  return Number(m[1]);
}

/** Mean ns per run and the program's return value (0 = TC_ACT_OK, 2 = TC_ACT_SHOT). */
async function runProgram(
  id: number,
  file: string,
  repeat: number,
  signal?: AbortSignal,
): Promise<{ ns: number; ret: number }> {
  const out = await run(
    'bpftool',
    ['prog', 'run', 'id', String(id), 'data_in', file, 'repeat', String(repeat)],
    { signal },
  );
  const m = /Return value: (\d+), duration(?: \(average\))?: (\d+)ns/.exec(out);
  if (!m) throw new Error(`datapath-prog: unexpected bpftool output: ${out}`);
  return { ret: Number(m[1]), ns: Number(m[2]) };
}

export async function runDatapathProgBench(
  opts: DatapathProgOptions = {},
): Promise<Record<string, number>> {
  const entries = opts.entries ?? 100_000;
  const repeat = opts.repeat ?? 1_000_000;
  const { scenarios } = await ebpfScenarios([entries]);
  const scenario = scenarios[0]!;
  const bed = await createTestbed(benchSpec(), opts.signal ? { signal: opts.signal } : {});
  const dir = await mkdtemp(join(tmpdir(), 'meshplane-datapath-prog-'));
  try {
    await scenario.setup(bed, opts.signal);
    const client = bed.pod(CLIENT).ip;
    const server = bed.pod(SERVER).ip;
    const forward = join(dir, 'forward');
    const reply = join(dir, 'reply');
    await writeFile(forward, tcpPacket(client, server, 40000, SERVER_PORT));
    await writeFile(reply, tcpPacket(server, client, SERVER_PORT, 40000));
    const clientEgress = await programId(bed, CLIENT, 'ingress', opts.signal);
    const serverIngress = await programId(bed, SERVER, 'egress', opts.signal);
    const serverEgress = await programId(bed, SERVER, 'ingress', opts.signal);
    // First runs create the flow's conntrack entries (both directions' programs).
    await runProgram(clientEgress, forward, 1, opts.signal);
    await runProgram(serverIngress, forward, 1, opts.signal);
    const egressForward = await runProgram(clientEgress, forward, repeat, opts.signal);
    const ingressForward = await runProgram(serverIngress, forward, repeat, opts.signal);
    const egressReply = await runProgram(serverEgress, reply, repeat, opts.signal);
    return {
      entries,
      repeat,
      egress_forward_ns: egressForward.ns,
      ingress_forward_ns: ingressForward.ns,
      egress_reply_ns: egressReply.ns,
      // 0 = passed: a figure for a dropped packet would time the wrong path
      egress_forward_ret: egressForward.ret,
      ingress_forward_ret: ingressForward.ret,
      egress_reply_ret: egressReply.ret,
    };
  } finally {
    await scenario.teardown?.();
    await bed.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function datapathProgBench(json: boolean, argv: readonly string[]): Promise<void> {
  const { entries, repeat } = numericOptions(argv, ['entries', 'repeat']);
  const interrupt = interruptSignal();
  try {
    const figures = await runDatapathProgBench({
      ...(entries !== undefined ? { entries: Math.round(entries) } : {}),
      ...(repeat !== undefined ? { repeat: Math.round(repeat) } : {}),
      signal: interrupt.signal,
    });
    if (json) process.stdout.write(`${JSON.stringify({ bench: 'datapath-prog', figures })}\n`);
    else
      process.stdout.write(
        `datapath-prog: ${figures['entries']} entries, ${figures['repeat']} runs each\n` +
          `  egress forward  ${figures['egress_forward_ns']} ns\n` +
          `  ingress forward ${figures['ingress_forward_ns']} ns\n` +
          `  egress reply    ${figures['egress_reply_ns']} ns\n`,
      );
  } finally {
    interrupt.dispose();
  }
}
