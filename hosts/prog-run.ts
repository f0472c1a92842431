import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../common/index.js';
import { run } from './command.js';

/** IP protocol numbers of the L4 headers ipv4Packet writes. */
export const PROTO = { TCP: 6, UDP: 17, SCTP: 132 } as const;

export interface PacketSpec {
  protocol: (typeof PROTO)[keyof typeof PROTO];
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

/**
 * Ethernet + IPv4 + an L4 header (TCP with ACK set, UDP, or SCTP's common
 * header) from src:sport to dst:dport; checksums are left zero (the programs
 * do not check them). For BPF_PROG_TEST_RUN: no socket of the protocol is
 * needed, so SCTP can be judged on a kernel without SCTP.
 */
export function ipv4Packet(p: PacketSpec): Buffer {
  const l4 = p.protocol === PROTO.TCP ? 20 : p.protocol === PROTO.UDP ? 8 : 12;
  const b = Buffer.alloc(14 + 20 + l4);
  b.writeUInt16BE(0x0800, 12);
  const ip = 14;
  b[ip] = 0x45;
  b.writeUInt16BE(20 + l4, ip + 2);
  b[ip + 8] = 64;
  b[ip + 9] = p.protocol;
  p.src.split('.').forEach((o, i) => (b[ip + 12 + i] = Number(o)));
  p.dst.split('.').forEach((o, i) => (b[ip + 16 + i] = Number(o)));
  const h = ip + 20;
  b.writeUInt16BE(p.sport, h);
  b.writeUInt16BE(p.dport, h + 2);
  if (p.protocol === PROTO.TCP) {
    b[h + 12] = 5 << 4;
    b[h + 13] = 0x10;
  } else if (p.protocol === PROTO.UDP) {
    b.writeUInt16BE(l4, h + 4);
  }
  return b;
}

/** The id of the bpf program attached to DEV's tc HOOK in NETNS. */
export async function attachedProgramId(
  netns: string,
  dev: string,
  hook: 'ingress' | 'egress',
  signal?: AbortSignal,
): Promise<number> {
  const out = await run('tc', ['-n', netns, 'filter', 'show', 'dev', dev, hook], { signal });
  const m = / id (\d+) /.exec(out);
  if (!m) throw new MeshError('NOT_FOUND', `no bpf program on ${netns}/${dev} tc ${hook}`);
  return Number(m[1]);
}

export interface TestRunResult {
  /** the program's return value: 0 TC_ACT_OK (passed), 2 TC_ACT_SHOT (dropped) */
  ret: number;
  /** mean time per run, as the kernel measured it */
  ns: number;
}

/**
 * Runs program ID `repeat` times on `packet` in the kernel
 * (BPF_PROG_TEST_RUN via `bpftool prog run`): with the program's real maps,
 * so what it reads and writes (conntrack, counters) is real state.
 */
export async function testRunProgram(
  id: number,
  packet: Buffer,
  opts: { repeat?: number; signal?: AbortSignal } = {},
): Promise<TestRunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'meshplane-prog-run-'));
  try {
    const file = join(dir, 'packet');
    await writeFile(file, packet);
    const args = ['prog', 'run', 'id', String(id), 'data_in', file];
    if (opts.repeat !== undefined) args.push('repeat', String(opts.repeat));
    const out = await run('bpftool', args, { signal: opts.signal });
    const m = /Return value: (\d+), duration(?: \(average\))?: (\d+)ns/.exec(out);
    if (!m) throw new MeshError('INTERNAL', `unexpected bpftool prog run output: ${out}`);
    return { ret: Number(m[1]), ns: Number(m[2]) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
