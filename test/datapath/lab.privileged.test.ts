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

  it(
    'gives the demo matrix on the real kernel, with observed outcomes in its JSON',
    { timeout: 180_000 },
    async () => {
      const r = await meshctl([
        'lab',
        '--manifests',
        'clusters/demo',
        '--probes',
        'clusters/demo/probes.yaml',
        '--json',
      ]);
      expect(r.stderr).not.toContain('MISMATCH');
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as {
        apiVersion: string;
        results: {
          from: string;
          to: string;
          port: number;
          allowed: boolean;
          observed: string;
          compiled: { allowed: boolean };
          verdict: { verdict: string; reason: string; summary: string } | null;
        }[];
      };
      expect(doc.apiVersion).toBe('meshplane/v1');
      const matrix = doc.results.map(
        (x) => `${x.from.split('/')[2]} → ${x.to.split('/').at(-1)}:${x.port} ${x.observed}`,
      );
      expect(matrix).toEqual([
        'transactions-7c9d5b8f4-x2kqv → fraud-detection-9f7c6d5b4-k8dnw:50051 connected',
        'frontend-6f4b9c7d8-h5pjr → billing-service-5b8d7f9c6-t4vxk:8080 connected',
        'legacy-service-84d6c5b9f-zr7mc → billing-service-5b8d7f9c6-w9npd:8080 timeout',
        'frontend-6f4b9c7d8-q7lzn → billing-service-5b8d7f9c6-t4vxk:9090 timeout',
        'frontend-6f4b9c7d8-h5pjr → fraud-detection-9f7c6d5b4-s2hxq:50051 timeout',
        'legacy-service-84d6c5b9f-zr7mc → frontend-6f4b9c7d8-h5pjr:8080 connected',
        'transactions-7c9d5b8f4-m8wzt → 198.18.0.10:443 connected',
      ]);
      for (const x of doc.results) expect(x.allowed).toBe(x.compiled.allowed);
      // Each result carries the datapath's verdict event: the drop for a blocked probe.
      for (const x of doc.results) {
        expect(x.verdict, `${x.from} → ${x.to}:${x.port}`).not.toBeNull();
        expect(x.verdict!.verdict).toBe(x.observed === 'connected' ? 'FORWARDED' : 'DROPPED');
      }
      expect(doc.results[2]!.verdict!.summary).toMatch(
        /^policy denied: no rule allows identity \d+ → \d+ on 8080\/TCP \(ingress\)$/,
      );
    },
  );
});
