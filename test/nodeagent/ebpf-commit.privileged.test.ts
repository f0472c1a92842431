// An apply whose policy maps are written on koffi worker threads (commit.ts),
// failing part-way: a batch write (or read-back) that fails while other maps
// are being written and read back must leave the datapath as it was (the standby copy
// undone, the active copy and the digest untouched), and the next apply works. The
// same for a large ipcache change, written element by element on a worker thread.
import { afterAll, describe, expect, it } from 'vitest';
import { BpfError, Libbpf } from '../../nodeagent/datapath/ebpf/index.js';
import type {
  DatapathChange,
  DatapathContents,
  EbpfDatapath,
} from '../../nodeagent/datapath/index.js';
import { requirePrivileged } from '../harness/index.js';
import { bulkPolicyChange, emptyChange, sorted } from './datapath-builders.js';
import { newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

/**
 * Fails the n-th batch update (or batch lookup) run on a worker thread
 * (ENOMEM), once; or the next map creation on the calling thread.
 */
class FailingLibbpf extends Libbpf {
  failAt = 0;
  failLookupAt = 0;
  /** fail the next in-kernel digest run (the read-back then dumps the map) */
  failRun = false;
  failCreate = false;
  /** fail the next element-wise write on a worker thread (an LPM trie's) after writing half of it */
  failEach = false;
  #seen = 0;
  #lookups = 0;
  override mapCreate(
    type: number,
    name: string,
    keySize: number,
    valueSize: number,
    maxEntries: number,
    flags: number,
  ): number {
    if (this.failCreate) {
      this.failCreate = false;
      throw new BpfError(`bpf_map_create(${name})`, 12);
    }
    return super.mapCreate(type, name, keySize, valueSize, maxEntries, flags);
  }
  override async updateEachAsync(
    name: string,
    fd: number,
    keySize: number,
    valueSize: number,
    keys: Buffer,
    values: Buffer,
    count: number,
    flags: bigint,
  ): Promise<void> {
    if (!this.failEach)
      return super.updateEachAsync(name, fd, keySize, valueSize, keys, values, count, flags);
    this.failEach = false;
    const half = Math.floor(count / 2);
    await super.updateEachAsync(name, fd, keySize, valueSize, keys, values, half, flags);
    throw new BpfError(`update of ${name}`, 12);
  }
  override callAsync(fn: (...args: never[]) => number, ...args: unknown[]): Promise<number> {
    if (fn === this.updateBatch && this.failAt > 0 && ++this.#seen === this.failAt) {
      this.failAt = 0;
      return Promise.resolve(-12);
    }
    if (fn === this.testRun && this.failRun) {
      this.failRun = false;
      return Promise.resolve(-12);
    }
    if (fn === this.lookupBatch && this.failLookupAt > 0 && ++this.#lookups === this.failLookupAt) {
      this.failLookupAt = 0;
      return Promise.resolve(-12);
    }
    return super.callAsync(fn, ...args);
  }
}

/** `endpoints` endpoints (new or not) with `per` policy entries each, ports from `port`. */
function revision(names: string[], per: number, port: number): DatapathChange {
  return bulkPolicyChange(names, per, port, { net: '10.7.0', identity: 0x20000, ports: 3 });
}

/** Prefixes 10.6.x.y/32, from `from` on, `n` of them, upserted (or deleted). */
function ipcacheChange(from: number, n: number, del = false): DatapathChange {
  const c = emptyChange();
  for (let i = from; i < from + n; i++) {
    const prefix = `10.6.${i >> 8}.${i & 255}/32`;
    if (del) c.ipcache.deletes.push(prefix);
    else
      c.ipcache.upserts.push({
        prefix,
        identity: 0x30000 + (i % 7),
        resource: `ipcache/${i % 16}`,
      });
  }
  return c;
}

/** What a datapath holds now: its digest and contents. */
async function held(dp: EbpfDatapath): Promise<{ digest: string; contents: DatapathContents }> {
  return { digest: dp.digest(), contents: sorted(await dp.read()) };
}

/** The datapath still holds `before` (digest, kernel read-back, contents) and `entries` policy entries. */
async function expectHeld(
  dp: EbpfDatapath,
  before: { digest: string; contents: DatapathContents },
  entries: number,
): Promise<void> {
  expect(dp.digest()).toBe(before.digest);
  expect(await dp.verify()).toBe(before.digest);
  expect(sorted(await dp.read())).toEqual(before.contents);
  expect(dp.counts().policyEntries).toBe(entries);
}

/** Both copies hold what the digest says: verify, then switch to the other copy (an empty revision) and verify again. */
async function expectBothCopiesVerify(dp: EbpfDatapath): Promise<void> {
  expect(await dp.verify()).toBe(dp.digest());
  dp.syncStandby();
  await dp.apply(emptyChange());
  expect(await dp.verify()).toBe(dp.digest());
}

describe.skipIf(!requirePrivileged())('eBPF commit on worker threads', () => {
  const pins = pinDirs(newRunId('c'));
  afterAll(() => pins.cleanup());

  it('undoes a revision whose batch write fails while other maps are written, and applies the next', async () => {
    const lib = new FailingLibbpf();
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 16,
      ipcacheEntries: 64,
      policyEntriesPerEndpoint: 2048,
    });
    try {
      await dp.apply(revision(['a', 'b', 'c'], 600, 1000));
      const before = await held(dp);
      expect(await dp.verify()).toBe(before.digest);

      // Adds 900 entries to a, b, c (whole-map read-backs) and adds d, e; the third map's write fails.
      lib.failAt = 3;
      await expect(dp.apply(revision(['a', 'b', 'c', 'd', 'e'], 900, 2000))).rejects.toThrow(
        /rolled back/,
      );
      await expectHeld(dp, before, 1800);

      await dp.apply(revision(['a', 'b', 'c', 'd', 'e'], 900, 2000));
      expect(dp.counts().policyEntries).toBe(3 * 1500 + 2 * 900);
      // The other copy got the same writes.
      await expectBothCopiesVerify(dp);
    } finally {
      await dp.close();
    }
  });

  it('undoes a revision whose write or read-back fails in a later batch of one large map', async () => {
    const lib = new FailingLibbpf();
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 4,
      ipcacheEntries: 64,
      policyEntriesPerEndpoint: 65_536,
    });
    try {
      await dp.apply(revision(['a'], 20_000, 1000));
      const before = await held(dp);
      const unchanged = (): Promise<void> => expectHeld(dp, before, 20_000);

      // 40,000 new entries for a are written (and read back) in batches (commit.ts POLICY_BATCH).
      lib.failAt = 2; // the second batch write
      await expect(dp.apply(revision(['a'], 40_000, 2000))).rejects.toThrow(/rolled back/);
      expect(lib.failAt).toBe(0);
      await unchanged();
      // The read-back's second batch lookup, after every write: the in-kernel
      // digest fails first, so the read-back dumps the map.
      lib.failRun = true;
      lib.failLookupAt = 2;
      await expect(dp.apply(revision(['a'], 40_000, 2000))).rejects.toThrow(/rolled back/);
      expect({ failRun: lib.failRun, failLookupAt: lib.failLookupAt }).toEqual({
        failRun: false,
        failLookupAt: 0,
      });
      await unchanged();

      await dp.apply(revision(['a', 'b'], 40_000, 2000));
      expect(dp.counts().policyEntries).toBe(60_000 + 40_000);
      await expectBothCopiesVerify(dp);
    } finally {
      await dp.close();
    }
  });

  it('writes a large ipcache change (an LPM trie) on a worker thread, undoing it when a write fails half-way', async () => {
    const lib = new FailingLibbpf();
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 4,
      ipcacheEntries: 4096,
      policyEntriesPerEndpoint: 1024,
    });
    try {
      // Above commit.ts ASYNC_TABLE_OPS: written, read back and verified off the event loop.
      await dp.apply(ipcacheChange(0, 300));
      const before = await held(dp);
      expect(before.contents.ipcache).toHaveLength(300);

      lib.failEach = true;
      await expect(dp.apply(ipcacheChange(300, 1000))).rejects.toThrow(/rolled back/);
      expect(lib.failEach).toBe(false);
      await expectHeld(dp, before, 0);

      // Other prefixes than the failed change's: a half it left in either copy would show below.
      await dp.apply(ipcacheChange(2000, 1000));
      expect(dp.counts().ipcache).toBe(1300);
      await dp.apply(ipcacheChange(0, 300, true));
      expect(dp.counts().ipcache).toBe(1000);
      await expectBothCopiesVerify(dp);
      expect((await dp.read()).ipcache).toHaveLength(1000);
    } finally {
      await dp.close();
    }
  });

  it("creates the other copy's maps for new endpoints after the ACK; a failure there is repaired by the next apply", async () => {
    const lib = new FailingLibbpf();
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 16,
      ipcacheEntries: 64,
      policyEntriesPerEndpoint: 2048,
    });
    try {
      await dp.apply(revision(['a', 'b'], 600, 1000));
      lib.failCreate = true; // the replay's first inner map creation fails
      dp.syncStandby();
      expect(lib.failCreate).toBe(false);
      const digest = dp.digest();
      expect(await dp.verify()).toBe(digest);
      const contents = sorted(await dp.read());

      // The next apply copies the active copy onto the stale one first, then writes it and flips.
      await dp.apply(revision(['c'], 300, 3000));
      // Then the repaired copy is switched to: it holds a, b and c as well.
      await expectBothCopiesVerify(dp);
      const now = sorted(await dp.read());
      expect(now.policies.filter((p) => p.endpoint !== 'eu/default/c')).toEqual(contents.policies);
      expect(dp.counts().policyEntries).toBe(1500);
    } finally {
      await dp.close();
    }
  });

  it('replays a large revision on the other copy in the background, its writes on worker threads; a failure there is repaired by the next apply', async () => {
    const lib = new FailingLibbpf();
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 16,
      ipcacheEntries: 4096,
      policyEntriesPerEndpoint: 8192,
    });
    const eachWrites = (): number => async.length;
    const async: string[] = [];
    const update = lib.updateEachAsync.bind(lib);
    lib.updateEachAsync = (name, ...rest) => {
      async.push(name);
      return update(name, ...rest);
    };
    try {
      // 3,000 prefixes (an LPM trie: one call each) and 12,000 policy entries.
      const big = revision(['a', 'b'], 6000, 1000);
      big.ipcache = ipcacheChange(0, 3000).ipcache;
      await dp.apply(big);
      // The active copy's trie was written on a worker thread before the ACK; the other
      // copy's follows in the background, without a call to syncStandby.
      expect(eachWrites()).toBe(1);
      await dp.standbySynced();
      expect(eachWrites()).toBe(2);
      await expectBothCopiesVerify(dp);

      // A background replay failing half-way: the next apply copies the active copy over first.
      await dp.apply(ipcacheChange(3000, 1000));
      lib.failEach = true; // after the ACK, before the replay's turn of the event loop
      await dp.standbySynced();
      expect(lib.failEach).toBe(false);
      const digest = dp.digest();
      expect(await dp.verify()).toBe(digest);
      await dp.apply(ipcacheChange(0, 500, true));
      await expectBothCopiesVerify(dp);
      expect(dp.counts()).toMatchObject({ ipcache: 3500, policyEntries: 12_000 });
    } finally {
      await dp.close();
    }
  });
});
