import { describe, expect, it } from 'vitest';
import { EmulatedDatapath, EmulatedMaps } from '../../nodeagent/index.js';
import { describeDatapathContract, emptyChange, ep } from './datapath-contract.js';

describeDatapathContract('emulated', (capacity) => {
  const maps = new EmulatedMaps();
  const datapath = new EmulatedDatapath({ ...capacity, maps });
  return Promise.resolve({
    datapath,
    tamperIpcache: (prefix, identity) => {
      maps.ipcache.set(prefix, identity);
      return Promise.resolve();
    },
    dispose: () => datapath.close(),
  });
});

describe('EmulatedDatapath', () => {
  it('has the documented default capacities', () => {
    expect(new EmulatedDatapath().capacity).toEqual({
      backend: 'emulated',
      ipcacheEntries: 524288,
      endpoints: 1024,
      policyEntriesPerEndpoint: 16384,
    });
  });

  it('adopts existing maps (as pinned maps survive an agent restart) with their digest', async () => {
    const maps = new EmulatedMaps();
    const first = new EmulatedDatapath({ maps });
    const c = emptyChange();
    c.ipcache.upserts.push({ prefix: '10.1.0.1/32', identity: 1, resource: 'ipcache/0' });
    c.endpoints.upserts.push({ ...ep('a', '10.1.0.1'), resource: 'endpoint/a' });
    await first.apply(c);
    await first.close(); // stopping is not removing
    const second = new EmulatedDatapath({ maps });
    expect(second.digest()).toBe(first.digest());
    expect(second.counts()).toMatchObject({ ipcache: 1, endpoints: 1 });
  });

  it('refuses overlapping calls instead of interleaving them', async () => {
    const dp = new EmulatedDatapath();
    const a = dp.apply(emptyChange());
    await expect(dp.apply(emptyChange())).rejects.toMatchObject({ code: 'INTERNAL' });
    await a;
  });
});
