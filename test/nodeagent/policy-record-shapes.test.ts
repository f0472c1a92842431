// The policy records the agent hands its eBPF datapath must share one V8
// hidden class: the map writers read their fields in a loop over 100,000
// records, and records of two shapes make those reads polymorphic (a
// spread in one copy once cost ~3x of a 100k revision's apply; RESULTS.md,
// session of 2026-12-07). No timing here: V8 says whether the records the
// agent decodes from the wire, the ones its translation hands the datapath
// (new and changed maps) and the ones read back from the kernel have the
// same map (%HaveSameMap, in a child node with --allow-natives-syntax).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./shapes/policy-records.ts', import.meta.url));

describe('policy record shapes', () => {
  it('decoded, translated and kernel-read records share one hidden class', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--allow-natives-syntax', '--import', 'tsx', SCRIPT],
      { timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toEqual({ newMap: true, changedMap: true, readFromKernel: true });
  });
});
