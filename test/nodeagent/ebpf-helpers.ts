// Helpers for the eBPF datapath's privileged tests: a pin dir per test under
// this run's /sys/fs/bpf/meshplane/<run-id>/, and writes behind the agent's
// back with bpftool (another process, as an operator or attacker would).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  EbpfDatapath,
  Libbpf,
  defaultPinDir,
  layoutDir,
  removePins,
  type EbpfDatapathOptions,
} from '../../nodeagent/datapath/ebpf/index.js';

const run = promisify(execFile);

/** A run id for this test file's pins and namespaces (short: interface names are ≤ 15 bytes). */
export function newRunId(prefix = 't'): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** Pin dirs handed out by `pinDirs`, removed by its `cleanup()`. */
export function pinDirs(runId: string): { next(): string; cleanup(): Promise<void> } {
  const made: string[] = [];
  let n = 0;
  return {
    next: () => {
      const dir = defaultPinDir(runId, `node${++n}`);
      made.push(dir);
      return dir;
    },
    cleanup: async () => {
      for (const dir of made.splice(0)) await removePins(dir);
    },
  };
}

export async function openDatapath(
  lib: Libbpf,
  opts: Omit<EbpfDatapathOptions, 'libbpf'>,
): Promise<EbpfDatapath> {
  return EbpfDatapath.open({ ...opts, libbpf: lib });
}

const hex = (b: Buffer): string[] => [...b].map((x) => x.toString(16).padStart(2, '0'));

/** `bpftool map update pinned PATH key hex ... value hex ...` */
export async function bpftoolUpdate(path: string, key: Buffer, value: Buffer): Promise<void> {
  await run('bpftool', [
    'map',
    'update',
    'pinned',
    path,
    'key',
    'hex',
    ...hex(key),
    'value',
    'hex',
    ...hex(value),
  ]);
}

/** The pin of a revisioned map's copy that the programs read now. */
export function activePin(
  dp: EbpfDatapath,
  map: 'ipcache' | 'ep_ips' | 'ep_info' | 'services',
): string {
  return `${layoutDir(dp.pinDir)}/${map}_${dp.maps.activeCopy()}`;
}
