// The eBPF datapath's port-range trie (policy_ranges_0/1) on the real kernel:
// both copies hold what the range entries derive after each apply (the
// standby copy is replayed, as for every revisioned map); a trie entry added
// or removed behind the agent's back in the active copy changes verify()'s
// digest (the standby copy does not judge packets and is not read); a new
// datapath on the same pins adopts the trie and later applies clean it up;
// ranges needing more prefixes than an endpoint may hold are refused whole.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { isMeshError } from '../../common/index.js';
import { Verdict } from '../../proto/index.js';
import { DatapathError, type EbpfDatapath, type PolicyRecord } from '../../nodeagent/index.js';
import {
  Libbpf,
  decodeRangeKey,
  encodePolicyValue,
  encodeRangeKey,
  expectedRanges,
  layoutDir,
  rangeGroupId,
} from '../../nodeagent/datapath/ebpf/index.js';
import { requirePrivileged } from '../harness/index.js';
import { emptyChange, ep, rule, sorted } from './datapath-builders.js';
import { bpftoolUpdate, newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

const run = promisify(execFile);
const hex = (b: Buffer): string[] => [...b].map((x) => x.toString(16).padStart(2, '0'));
const SIZES = { endpoints: 8, ipcacheEntries: 16, policyEntriesPerEndpoint: 32 };
const range = (identity: number, low: number, high: number, verdict = Verdict.VERDICT_ALLOW) => ({
  ...rule(identity, low, verdict),
  portHigh: high,
});

/** What one copy's trie holds: group id -> "port/len" -> verdict (slot of the one endpoint). */
function trieOf(dp: EbpfDatapath, copy: 0 | 1): Map<string, Map<number, Verdict>> {
  const out = new Map<string, Map<number, Verdict>>();
  for (const [k, v] of dp.maps.copies[copy].ranges.dump()) {
    const key = decodeRangeKey(k);
    const gid = `${key.slot}:${rangeGroupId(key)}`;
    if (!out.has(gid)) out.set(gid, new Map());
    out.get(gid)!.set(key.port * 32 + key.prefixLen, v.readUInt8(0));
  }
  return out;
}

function derived(slot: number, entries: PolicyRecord[]): Map<string, Map<number, Verdict>> {
  const out = new Map<string, Map<number, Verdict>>();
  for (const [gid, g] of expectedRanges(entries)) out.set(`${slot}:${gid}`, g);
  return out;
}

/**
 * Waits until `check` passes: a datapath replays a revision on its standby
 * copy by itself soon after apply() returns (once the switch's RCU grace
 * period has passed), with no call from the caller.
 */
const standbyReplayed = (check: () => void): Promise<void> =>
  vi.waitFor(check, { timeout: 5_000, interval: 5 });

const pin = (dp: EbpfDatapath, copy: number): string =>
  `${layoutDir(dp.pinDir)}/policy_ranges_${copy}`;

describe.skipIf(!requirePrivileged())('eBPF port-range trie', () => {
  const lib = new Libbpf();
  const pins = pinDirs(newRunId('r'));
  afterAll(() => pins.cleanup());

  const entries = [
    range(7, 8000, 8010),
    range(7, 8005, 8020, Verdict.VERDICT_DENY),
    rule(7, 8005),
    range(0, 7000, 7010, Verdict.VERDICT_AUDIT),
  ];

  const setUp = async (pinDir: string): Promise<EbpfDatapath> => {
    const dp = await openDatapath(lib, { pinDir, ...SIZES });
    const c = emptyChange();
    c.endpoints.upserts.push({ ...ep('a', '10.1.0.5'), resource: 'endpoint/a' });
    c.policies.push({
      endpoint: 'eu/default/a',
      resource: 'endpoint/a',
      upserts: entries,
      deletes: [],
    });
    await dp.apply(c);
    return dp;
  };

  it('holds what the entries derive in both copies, and detects a trie altered in the active copy', async () => {
    const dp = await setUp(pins.next());
    try {
      const slot = dp.slotOf('eu/default/a')!;
      const want = derived(slot, entries);
      expect(want.size).toBe(2);
      const active = dp.maps.activeCopy();
      expect(trieOf(dp, active)).toEqual(want);
      await standbyReplayed(() => expect(trieOf(dp, (1 - active) as 0 | 1)).toEqual(want));
      const digest = dp.digest();
      expect(await dp.verify()).toBe(digest);

      // An allow for 9000/16 of identity 7 written behind the agent's back.
      const stray = encodeRangeKey({
        slot,
        direction: 1,
        identity: 7,
        protocol: 6,
        port: 9000,
        prefixLen: 16,
      });
      const allow = encodePolicyValue(Verdict.VERDICT_ALLOW);
      await bpftoolUpdate(pin(dp, 1 - active), stray, allow);
      expect(await dp.verify()).toBe(digest); // the standby copy judges no packet
      await bpftoolUpdate(pin(dp, active), stray, allow);
      expect(await dp.verify()).not.toBe(digest);
      // The logical entries are intact: only the trie is wrong.
      expect(sorted(await dp.read()).policies[0]!.entries).toHaveLength(entries.length);
      await run('bpftool', [
        'map',
        'delete',
        'pinned',
        pin(dp, active),
        'key',
        'hex',
        ...hex(stray),
      ]);
      expect(await dp.verify()).toBe(digest);

      // A derived entry removed behind its back.
      const [first] = dp.maps.copies[active].ranges.keys();
      await run('bpftool', [
        'map',
        'delete',
        'pinned',
        pin(dp, active),
        'key',
        'hex',
        ...hex(first!),
      ]);
      expect(await dp.verify()).not.toBe(digest);
      expect(dp.digest()).toBe(digest);
    } finally {
      await dp.close();
    }
  });

  it('is adopted by a new datapath on the same pins; later applies rewrite and clear it in both copies', async () => {
    const pinDir = pins.next();
    const first = await setUp(pinDir);
    const digest = first.digest();
    await first.close();

    const dp = await openDatapath(lib, { pinDir, ...SIZES });
    try {
      expect(dp.created).toBe(false);
      expect(dp.digest()).toBe(digest);
      expect(await dp.verify()).toBe(digest);
      const slot = dp.slotOf('eu/default/a')!;

      const narrow = emptyChange();
      narrow.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [range(7, 8000, 8003)],
        deletes: [range(7, 8000, 8010), range(7, 8005, 8020)],
      });
      await dp.apply(narrow);
      const now = [
        rule(7, 8005),
        range(0, 7000, 7010, Verdict.VERDICT_AUDIT),
        range(7, 8000, 8003),
      ];
      await standbyReplayed(() => {
        for (const copy of [0, 1] as const) expect(trieOf(dp, copy)).toEqual(derived(slot, now));
      });
      expect(await dp.verify()).toBe(dp.digest());

      const gone = emptyChange();
      gone.endpoints.deletes.push('eu/default/a');
      await dp.apply(gone);
      await standbyReplayed(() => {
        for (const copy of [0, 1] as const) expect(trieOf(dp, copy).size).toBe(0);
      });
      expect(await dp.verify()).toBe(dp.digest());
    } finally {
      await dp.close();
    }
  });

  it('refuses ranges needing more port prefixes than an endpoint may hold, writing nothing', async () => {
    const dp = await setUp(pins.next());
    try {
      const before = sorted(await dp.read());
      const digest = dp.digest();
      const wide = emptyChange();
      wide.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        // 1..65535 is 16 prefixes per group; three groups and what is held exceed 32.
        upserts: [range(9, 1, 65535), range(10, 1, 65535), range(11, 1, 65535)],
        deletes: [],
      });
      const err: unknown = await dp.apply(wide).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatapathError);
      expect(isMeshError(err, 'CAPACITY')).toBe(true);
      expect((err as DatapathError).message).toMatch(
        /port ranges of eu\/default\/a would need \d+ port prefixes/,
      );
      expect(sorted(await dp.read())).toEqual(before);
      expect(dp.digest()).toBe(digest);
      expect(await dp.verify()).toBe(digest);
    } finally {
      await dp.close();
    }
  });
});
