// The read-back of a large policy write as a digest computed in the kernel
// (syscall program policy_digest, run with BPF_PROG_TEST_RUN: read-back.ts
// readWrittenPolicy). It must be the agent's digest of the same entries for
// endpoint names of both parities (the hashed prefix ends mid-block or not),
// spare the batch lookups when it matches, and give way to a dump (what the
// kernel really holds) when an entry was added behind the agent's back or
// the run failed — so the digest the ACK carries is always the kernel's.
// verify() reads the policy maps the same way (read.ts verifyCopy): digested
// in the kernel when they hold what the agent wrote, dumped when not.
import { afterAll, describe, expect, it } from 'vitest';
import {
  Libbpf,
  encodePolicyKey,
  encodePolicyValue,
  encodeSlot,
} from '../../nodeagent/datapath/ebpf/index.js';
import type { DatapathChange, EbpfDatapath } from '../../nodeagent/datapath/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import { requirePrivileged } from '../harness/index.js';
import { bulkPolicyChange, digestOf, rule } from './datapath-builders.js';
import { newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

/** Counts batch lookups and digest runs on worker threads; can fail the next run, or write a map before it. */
class WatchedLibbpf extends Libbpf {
  lookups = 0;
  /** the fds of those batch lookups */
  lookupFds: number[] = [];
  runs = 0;
  failRun = false;
  /** called before each digest run with its slot and copy */
  beforeRun: ((slot: number, copy: number) => void) | undefined;
  override callAsync(fn: (...args: never[]) => number, ...args: unknown[]): Promise<number> {
    if (fn === this.lookupBatch) {
      this.lookups++;
      this.lookupFds.push(args[0] as number);
    }
    if (fn === this.testRun) {
      this.runs++;
      if (this.failRun) {
        this.failRun = false;
        return Promise.resolve(-12); // ENOMEM
      }
    }
    return super.callAsync(fn, ...args);
  }
  override runSyscall(progFd: number, ctx: Buffer): Promise<number> {
    // policy_digest_ctx: slot, then copy
    this.beforeRun?.(ctx.readUInt32LE(0), ctx.readUInt32LE(4));
    return super.runSyscall(progFd, ctx);
  }
}

/** `per` allow entries for each endpoint (new or not), ports from `port`. */
function revision(names: string[], per: number, port: number): DatapathChange {
  return bulkPolicyChange(names, per, port, { net: '10.9.0', identity: 0x30000, ports: 7 });
}

/** The digest the datapath reports is the digest of a full read of the kernel maps (and verify() says so). */
async function expectKernelDigest(dp: EbpfDatapath): Promise<void> {
  expect(digestOf(await dp.read())).toBe(dp.digest());
  expect(await dp.verify()).toBe(dp.digest());
}

/** Adds `entry` to the policy map the kernel holds for `slot` in `copy`, as another process would. */
function writeBehind(
  lib: Libbpf,
  dp: EbpfDatapath,
  slot: number,
  copy: number,
  entry: Parameters<typeof encodePolicyKey>[0],
): void {
  const outer = dp.maps.copies[copy as 0 | 1].policyOuter.lookup(encodeSlot(slot))!;
  const fd = lib.mapFdById(outer.readUInt32LE(0));
  try {
    expect(
      lib.update(fd, encodePolicyKey(entry), encodePolicyValue(Verdict.VERDICT_ALLOW), 0n),
    ).toBe(0);
  } finally {
    lib.close(fd);
  }
}

const stray = {
  direction: Direction.DIRECTION_INGRESS,
  identity: 0x777,
  protocol: 6,
  portLow: 9999,
  portHigh: 9999,
};

describe.skipIf(!requirePrivileged())('in-kernel digest of a large policy write', () => {
  const pins = pinDirs(newRunId('k'));
  afterAll(() => pins.cleanup());
  const sizes = { endpoints: 8, ipcacheEntries: 64, policyEntriesPerEndpoint: 8192 };

  it('is the agent digest for both name parities, new and replaced maps, with no batch lookup', async () => {
    const lib = new WatchedLibbpf();
    const dp = await openDatapath(lib, { pinDir: pins.next(), ...sizes });
    try {
      // "policy|eu/default/ab|" has 21 UTF-16 units, "policy|eu/default/abc|" 22.
      await dp.apply(revision(['ab', 'abc'], 3000, 1000));
      expect({ runs: lib.runs, lookups: lib.lookups }).toEqual({ runs: 2, lookups: 0 });
      expect(dp.counts().policyEntries).toBe(6000);
      await expectKernelDigest(dp);

      // Replaced: 3000 more entries on each, and "ab" loses one of its first ones.
      const next = revision(['ab', 'abc'], 3000, 4000);
      next.policies[0]!.deletes.push(rule(0x30000, 1000));
      lib.runs = 0;
      lib.lookups = 0;
      await dp.apply(next);
      expect({ runs: lib.runs, lookups: lib.lookups }).toEqual({ runs: 2, lookups: 0 });
      expect(dp.counts().policyEntries).toBe(12_000 - 1);
      await expectKernelDigest(dp);
      expect(dp.kernelDigests().write).toEqual({ matched: 4, mismatched: 0, refused: 0 });
    } finally {
      await dp.close();
    }
  });

  it('gives way to a dump when the kernel holds an entry nobody wrote, which the digest then counts', async () => {
    const lib = new WatchedLibbpf();
    const dp = await openDatapath(lib, { pinDir: pins.next(), ...sizes });
    try {
      // Another writer adds an entry to the map just written, before its read-back.
      lib.beforeRun = (slot, copy) => {
        lib.beforeRun = undefined;
        writeBehind(lib, dp, slot, copy, stray);
      };
      await dp.apply(revision(['ab'], 3000, 1000));
      expect(lib.lookups).toBeGreaterThan(0);
      expect(dp.counts().policyEntries).toBe(3001);
      await expectKernelDigest(dp);
      const held = (await dp.read()).policies.find((p) => p.endpoint === 'eu/default/ab')!;
      expect(held.entries).toContainEqual({ ...stray, verdict: Verdict.VERDICT_ALLOW });
      expect(dp.kernelDigests().write).toEqual({ matched: 0, mismatched: 1, refused: 0 });
    } finally {
      await dp.close();
    }
  });

  it('gives way to a dump when the kernel refuses the run', async () => {
    const lib = new WatchedLibbpf();
    const dp = await openDatapath(lib, { pinDir: pins.next(), ...sizes });
    try {
      lib.failRun = true;
      await dp.apply(revision(['ab'], 3000, 1000));
      expect(lib.lookups).toBeGreaterThan(0);
      expect(dp.counts().policyEntries).toBe(3000);
      await expectKernelDigest(dp);
      expect(dp.kernelDigests().write).toEqual({ matched: 0, mismatched: 0, refused: 1 });
    } finally {
      await dp.close();
    }
  });

  it('verify() digests the maps it holds in the kernel, and dumps the one written behind its back', async () => {
    const lib = new WatchedLibbpf();
    const dp = await openDatapath(lib, { pinDir: pins.next(), ...sizes });
    try {
      // A small map too (read back key by key at apply): digested in the kernel at verify.
      await dp.apply(revision(['ab', 'abc', 'abcd'], 3000, 1000));
      await dp.apply(
        bulkPolicyChange(['tiny'], 10, 1000, { net: '10.9.1', identity: 0x30000, ports: 7 }),
      );
      const names = ['ab', 'abc', 'abcd', 'tiny'].map((n) => `eu/default/${n}`);
      /** batch lookups of the endpoints' policy maps since the last reset (the other maps are read whole) */
      const policyLookups = (): Record<string, number> => {
        const out: Record<string, number> = {};
        for (const name of names) {
          const fd = dp.maps.innerOf(dp.maps.activeCopy(), dp.slotOf(name)!)!.fd;
          out[name] = lib.lookupFds.filter((f) => f === fd).length;
        }
        return out;
      };
      const none = Object.fromEntries(names.map((n) => [n, 0]));
      lib.runs = 0;
      lib.lookupFds = [];
      expect(await dp.verify()).toBe(dp.digest());
      expect(lib.runs).toBe(4);
      expect(policyLookups()).toEqual(none);
      expect(dp.kernelDigests().verify).toEqual({ matched: 4, mismatched: 0, refused: 0 });

      // After the ACK: an entry added to one map by another process is in the digest verify() reports.
      const slot = dp.slotOf('eu/default/abc')!;
      writeBehind(lib, dp, slot, dp.maps.activeCopy(), stray);
      lib.lookupFds = [];
      const verified = await dp.verify();
      expect(verified).not.toBe(dp.digest());
      expect(policyLookups()).toEqual({ ...none, 'eu/default/abc': 1 });
      expect(verified).toBe(digestOf(await dp.read()));
      expect(dp.kernelDigests().verify).toEqual({ matched: 7, mismatched: 1, refused: 0 });
    } finally {
      await dp.close();
    }
  });

  it('verify() dumps a map whose digest run the kernel refuses, and still reports what it holds', async () => {
    const lib = new WatchedLibbpf();
    const dp = await openDatapath(lib, { pinDir: pins.next(), ...sizes });
    try {
      await dp.apply(revision(['ab', 'abc'], 3000, 1000));
      lib.failRun = true;
      expect(await dp.verify()).toBe(dp.digest());
      expect(dp.kernelDigests().verify).toEqual({ matched: 1, mismatched: 0, refused: 1 });
    } finally {
      await dp.close();
    }
  });
});
