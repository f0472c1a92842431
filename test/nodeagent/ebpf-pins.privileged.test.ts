// Pins of the eBPF datapath: adoption after a restart, replacement of pins
// of another layout version or size as a whole, and tampering with a
// per-endpoint policy map (not pinned: reached by id) seen by verify().
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { Digest } from '../../common/index.js';
import { requirePrivileged } from '../harness/index.js';
import { Verdict } from '../../proto/index.js';
import {
  LAYOUT_VERSION,
  POLICY_INNER_FLAGS,
  Libbpf,
  STRUCTS,
  encodePolicyKey,
  encodePolicyValue,
  layoutDir,
} from '../../nodeagent/datapath/ebpf/index.js';
import { emptyChange, ep, rule, sorted } from './datapath-builders.js';
import { bpftoolUpdate, newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

const run = promisify(execFile);
const EMPTY = new Digest().toString();
const SIZES = { endpoints: 8, ipcacheEntries: 32, policyEntriesPerEndpoint: 16 };

function someState(): ReturnType<typeof emptyChange> {
  const c = emptyChange();
  c.ipcache.upserts.push({ prefix: '10.1.0.1/32', identity: 0x10100, resource: 'ipcache/0' });
  c.endpoints.upserts.push({ ...ep('a', '10.1.0.1'), resource: 'endpoint/a' });
  c.policies.push({
    endpoint: 'eu/default/a',
    resource: 'endpoint/a',
    upserts: [rule(0x10101, 80)],
    deletes: [],
  });
  return c;
}

describe.skipIf(!requirePrivileged())('eBPF datapath pins', () => {
  const lib = new Libbpf();
  const pins = pinDirs(newRunId('pins'));
  afterAll(() => pins.cleanup());

  it('adopts its pins after a restart with the same contents and digest', async () => {
    const pinDir = pins.next();
    const first = await openDatapath(lib, { pinDir, ...SIZES });
    expect(first.created).toBe(true);
    await first.apply(someState());
    const digest = first.digest();
    const contents = sorted(await first.read());
    await first.close(); // stopping is not removing

    const second = await openDatapath(lib, { pinDir, ...SIZES });
    expect(second.created).toBe(false);
    expect(second.digest()).toBe(digest);
    expect(await second.verify()).toBe(digest);
    expect(sorted(await second.read())).toEqual(contents);
    expect(second.counts()).toMatchObject({ ipcache: 1, endpoints: 1, policyEntries: 1 });
    await second.close();
  });

  it('replaces pins of another layout version as a whole, and removes other layouts', async () => {
    const pinDir = pins.next();
    const first = await openDatapath(lib, { pinDir, ...SIZES });
    await first.apply(someState());
    await first.close();
    // Stamp the pins with another layout version, and leave an older layout's set beside them.
    const config = Buffer.alloc(STRUCTS.config_value.size);
    config.writeUInt32LE(LAYOUT_VERSION + 1, STRUCTS.config_value.fields.layout_version.offset);
    await bpftoolUpdate(join(layoutDir(pinDir), 'config'), Buffer.alloc(4), config);
    const old = join(pinDir, `v${LAYOUT_VERSION + 7}`);
    await mkdir(old);
    await run('bpftool', [
      'map',
      'create',
      join(old, 'ipcache_0'),
      'type',
      'hash',
      'key',
      '4',
      'value',
      '4',
      'entries',
      '1',
      'name',
      'mp_old',
    ]);

    const second = await openDatapath(lib, { pinDir, ...SIZES });
    expect(second.created).toBe(true);
    expect(second.digest()).toBe(EMPTY);
    expect(await second.verify()).toBe(EMPTY);
    expect(existsSync(old)).toBe(false);
    await second.apply(someState()); // the new set works
    expect(await second.verify()).toBe(second.digest());
    await second.close();
  });

  it('replaces pins of another size (capacity) as a whole', async () => {
    const pinDir = pins.next();
    const first = await openDatapath(lib, { pinDir, ...SIZES });
    await first.apply(someState());
    await first.close();
    const bigger = await openDatapath(lib, { pinDir, ...SIZES, endpoints: 16 });
    expect(bigger.created).toBe(true);
    expect(bigger.capacity.endpoints).toBe(16);
    expect(bigger.digest()).toBe(EMPTY);
    await bigger.close();
  });

  it('verify() sees a policy entry changed by another process (bpftool, by map id)', async () => {
    const pinDir = pins.next();
    const dp = await openDatapath(lib, { pinDir, ...SIZES });
    await dp.apply(someState());
    const applied = dp.digest();
    // The active copy's inner map of endpoint a, found through its outer map's pin.
    const copy = dp.maps.activeCopy();
    const slot = dp.slotOf('eu/default/a')!;
    const innerId = await innerMapId(pinDir, copy, slot);
    const key = encodePolicyKey(rule(0x10101, 80));
    await run('bpftool', [
      'map',
      'update',
      'id',
      String(innerId),
      'key',
      'hex',
      ...hexOf(key),
      'value',
      'hex',
      ...hexOf(encodePolicyValue(Verdict.VERDICT_DENY)),
    ]);

    const verified = await dp.verify();
    expect(verified).not.toBe(applied);
    const policies = (await dp.read()).policies.find((p) => p.endpoint === 'eu/default/a');
    expect(policies?.entries).toEqual([rule(0x10101, 80, Verdict.VERDICT_DENY)]);
    expect(dp.digest()).toBe(applied); // the ACK-side digest is what was applied
    await dp.close();
  });

  it('creates inner policy maps with the template flags (preallocated since layout 4), in both copies', async () => {
    const pinDir = pins.next();
    const dp = await openDatapath(lib, { pinDir, ...SIZES });
    try {
      await dp.apply(someState());
      dp.syncStandby(); // the other copy's writes (and its outer map entry) follow the ACK
      const slot = dp.slotOf('eu/default/a')!;
      for (const copy of [0, 1]) {
        const shown = await run('bpftool', [
          '-j',
          'map',
          'show',
          'id',
          String(await innerMapId(pinDir, copy, slot)),
        ]);
        const info = JSON.parse(shown.stdout) as {
          type: string;
          flags: number;
          max_entries: number;
        };
        expect(info).toMatchObject({
          type: 'hash',
          flags: POLICY_INNER_FLAGS,
          max_entries: SIZES.policyEntriesPerEndpoint,
        });
      }
      expect(POLICY_INNER_FLAGS).toBe(0);
    } finally {
      await dp.close();
    }
  });
});

/** The id of the inner policy map at `slot` of copy `copy`, through the outer map's pin (bpftool). */
async function innerMapId(pinDir: string, copy: number, slot: number): Promise<number> {
  const { stdout } = await run('bpftool', [
    '-j',
    'map',
    'lookup',
    'pinned',
    join(layoutDir(pinDir), `policy_${copy}`),
    'key',
    'hex',
    ...hex4(slot),
  ]);
  // bpftool prints a map-in-map value as its bytes: the inner map's id, little-endian.
  const bytes = (JSON.parse(stdout) as { value: string[] }).value.map((x) => parseInt(x, 16));
  return Buffer.from(bytes).readUInt32LE(0);
}

function hex4(n: number): string[] {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return hexOf(b);
}

function hexOf(b: Buffer): string[] {
  return [...b].map((x) => x.toString(16).padStart(2, '0'));
}
