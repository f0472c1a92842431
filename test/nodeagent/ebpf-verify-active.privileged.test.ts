// Periodic re-verification reads the copy the programs read (the active one)
// and only that: a write behind the agent's back into the active copy changes
// verify()'s digest, one into the standby copy (which no packet is judged by,
// and which the next apply rewrites) does not.
import { afterAll, describe, expect, it } from 'vitest';
import {
  Libbpf,
  encodeIpcacheKey,
  encodeIpcacheValue,
} from '../../nodeagent/datapath/ebpf/index.js';
import { requirePrivileged } from '../harness/index.js';
import { emptyChange } from './datapath-builders.js';
import { activePin, bpftoolUpdate, newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

describe.skipIf(!requirePrivileged())('eBPF re-verification', () => {
  const lib = new Libbpf();
  const pins = pinDirs(newRunId('v'));
  afterAll(() => pins.cleanup());

  it('reads the active copy only', async () => {
    const dp = await openDatapath(lib, {
      pinDir: pins.next(),
      endpoints: 16,
      ipcacheEntries: 64,
      policyEntriesPerEndpoint: 64,
    });
    try {
      const c = emptyChange();
      c.ipcache.upserts.push({ prefix: '10.1.0.10/32', identity: 0x10100, resource: 'ipcache/0' });
      await dp.apply(c);
      const digest = dp.digest();
      expect(await dp.verify()).toBe(digest);

      const active = activePin(dp, 'ipcache');
      const standby = active.replace(/_(\d)$/, (_, n: string) => `_${1 - Number(n)}`);
      await bpftoolUpdate(standby, encodeIpcacheKey('10.66.0.1/32'), encodeIpcacheValue(66));
      expect(await dp.verify()).toBe(digest);

      await bpftoolUpdate(active, encodeIpcacheKey('10.66.0.1/32'), encodeIpcacheValue(66));
      expect(await dp.verify()).not.toBe(digest);
      expect(dp.digest()).toBe(digest);
    } finally {
      await dp.close();
    }
  });
});
