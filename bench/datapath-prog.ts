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
import {
  PROTO,
  attachedProgramId,
  createTestbed,
  ipv4Packet,
  testRunProgram,
} from '../hosts/index.js';
import { benchSpec, CLIENT, SERVER, SERVER_PORT } from './datapath.js';
import { ebpfScenarios } from './lib/ebpf-scenario.js';
import { interruptSignal, numericOptions } from './lib/runner-options.js';

export interface DatapathProgOptions {
  entries?: number;
  repeat?: number;
  signal?: AbortSignal;
}

export async function runDatapathProgBench(
  opts: DatapathProgOptions = {},
): Promise<Record<string, number>> {
  const entries = opts.entries ?? 100_000;
  const repeat = opts.repeat ?? 1_000_000;
  const { scenarios } = await ebpfScenarios([entries]);
  const scenario = scenarios[0]!;
  const bed = await createTestbed(benchSpec(), opts.signal ? { signal: opts.signal } : {});
  try {
    await scenario.setup(bed, opts.signal);
    const client = bed.pod(CLIENT).ip;
    const server = bed.pod(SERVER).ip;
    const tcp = { protocol: PROTO.TCP, sport: 40000, dport: SERVER_PORT };
    const forward = ipv4Packet({ ...tcp, src: client, dst: server });
    const reply = ipv4Packet({
      ...tcp,
      src: server,
      dst: client,
      sport: SERVER_PORT,
      dport: 40000,
    });
    const prog = (pod: string, hook: 'ingress' | 'egress'): Promise<number> => {
      const p = bed.pod(pod);
      return attachedProgramId(p.nodeNetns, p.hostIfname, hook, opts.signal);
    };
    const clientEgress = await prog(CLIENT, 'ingress');
    const serverIngress = await prog(SERVER, 'egress');
    const serverEgress = await prog(SERVER, 'ingress');
    const signal = opts.signal ? { signal: opts.signal } : {};
    // First runs create the flow's conntrack entries (both directions' programs).
    await testRunProgram(clientEgress, forward, signal);
    await testRunProgram(serverIngress, forward, signal);
    const timed = { repeat, ...signal };
    const egressForward = await testRunProgram(clientEgress, forward, timed);
    const ingressForward = await testRunProgram(serverIngress, forward, timed);
    const egressReply = await testRunProgram(serverEgress, reply, timed);
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
