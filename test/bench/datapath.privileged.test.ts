// Keeps the datapath benchmark from rotting: a short run on the real kernel
// produces the contract keys (DESIGN.md "Benchmarks") (CI's leftover check sees any namespace it leaves).
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  measureAgentApply,
  measureMapProgramming,
  measureVerify,
  runDatapathBench,
  runDatapathProgBench,
} from '../../bench/index.js';
import { requirePrivileged } from '../harness/index.js';

describe.skipIf(!requirePrivileged())('datapath benchmark', () => {
  it('measures the baseline and iptables with the contract keys, without failed connections', async () => {
    const r = await runDatapathBench({ seconds: 0.5, rounds: 1, only: ['iptables_10'] });
    expect(Object.keys(r.scenarios).sort()).toEqual(['baseline', 'iptables_10']);
    expect(r.figures['baseline_conn_per_s']).toBeGreaterThan(0);
    expect(r.figures['conn_ratio_iptables_10']).toBeGreaterThan(0);
    expect(r.figures['pinned_cpu']).toBe(availableParallelism() - 1);
    expect(r.figures['baseline_failed']).toBe(0);
    expect(r.figures['iptables_10_failed']).toBe(0);
  });
});

describe.skipIf(!requirePrivileged())('datapath-prog benchmark', () => {
  it('times each attached program on its path, every timed packet passing', async () => {
    const r = await runDatapathProgBench({ entries: 10, repeat: 1000 });
    for (const path of ['egress_forward', 'ingress_forward', 'egress_reply']) {
      expect(r[`${path}_ns`], path).toBeGreaterThan(0);
      expect(r[`${path}_ret`], path).toBe(0);
    }
    expect(r['entries']).toBe(10);
  });
});

describe.skipIf(!requirePrivileged())('datapath-maps benchmark', () => {
  it('programs a revision from a DatapathChange and through the agent whole, from its encoded parts', async () => {
    const runId = `test-maps-${process.pid}`;
    // Each throws unless the datapath then holds every entry (and, directly, the digest verifies).
    const direct = await measureMapProgramming({ entries: 3_000, endpoints: 3, runId });
    expect(direct.entriesPerS).toBeGreaterThan(0);
    const agent = await measureAgentApply({ entries: 3_000, endpoints: 3, runId });
    expect(agent.entriesPerS).toBeGreaterThan(0);
    expect(agent.seconds).toBeGreaterThan(0);
    // Throws unless verify() and a full read both give the digest.
    const verify = await measureVerify({ entries: 3_000, endpoints: 3, runId, rounds: 2 });
    expect(verify.verifyMs).toBeGreaterThan(0);
    expect(verify.fullReadMs).toBeGreaterThan(0);
  });
});
