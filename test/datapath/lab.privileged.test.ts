// `meshctl lab` on the demo: the whole mesh (etcd, NATS, control plane,
// sources, one eBPF agent per node namespace) and every probe a real
// connection between namespace hosts. Takes ~40-60 s on 2 cores: it starts
// every process of the mesh and waits for all four nodes to converge.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { requirePrivileged } from '../harness/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

function meshctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MESHCTL, ...args],
      { cwd: ROOT, timeout: 170_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe.skipIf(!requirePrivileged())('meshctl lab', () => {
  it('refuses any datapath but eBPF', async () => {
    const r = await meshctl([
      'lab',
      '--manifests',
      'clusters/demo',
      '--probes',
      'clusters/demo/probes.yaml',
      '--datapath',
      'emulated',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('lab runs on the eBPF datapath only, not emulated');
  });
});
