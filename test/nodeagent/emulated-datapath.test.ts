import { describe, expect, it } from 'vitest';
import { EmulatedDatapath, EmulatedMaps } from '../../nodeagent/index.js';
import {
  describeDatapathContract,
  emptyChange,
  ep,
  type DatapathFactory,
} from './datapath-contract.js';

/** Emulated datapaths for the contract, sharing `prefixPool` when given. */
function emulated(prefixPool?: Map<string, string>): DatapathFactory {
  return (capacity) => {
    const maps = new EmulatedMaps();
    const datapath = new EmulatedDatapath({
      ...capacity,
      maps,
      ...(prefixPool ? { prefixPool } : {}),
    });
    return Promise.resolve({
      datapath,
      tamperIpcache: (prefix, identity) => {
        maps.ipcache.set(prefix, identity);
        return Promise.resolve();
      },
      dispose: () => datapath.close(),
    });
  };
}

describeDatapathContract('emulated', emulated());
// Every datapath of this run sharing one prefix pool, as the benchmark's many agents in one process do.
describeDatapathContract('emulated, prefixes pooled', emulated(new Map()));

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

  it('stores a prefix new to its map as the pool string, and holds what a datapath without a pool holds', async () => {
    const pool = new Map<string, string>();
    const pooled = [
      new EmulatedDatapath({ prefixPool: pool }),
      new EmulatedDatapath({ prefixPool: pool }),
    ];
    const alone = new EmulatedDatapath();
    // Each datapath gets its own string objects, as each agent decodes its own response.
    const upsert = (i: number, identity: number): ReturnType<typeof emptyChange> => {
      const c = emptyChange();
      c.ipcache.upserts.push({
        prefix: ['10.9.0.', String(i), '/32'].join(''),
        identity,
        resource: 'ipcache/0',
      });
      return c;
    };
    for (const dp of [...pooled, alone]) {
      await dp.apply(upsert(1, 100));
      await dp.apply(upsert(2, 200));
      await dp.apply(upsert(1, 101)); // a held prefix: its entry changes, no new key
      const del = emptyChange();
      del.ipcache.deletes.push('10.9.0.2/32');
      await dp.apply(del);
      await dp.apply(upsert(2, 202)); // new to the map again
    }
    expect([...pool.keys()].sort()).toEqual(['10.9.0.1/32', '10.9.0.2/32']);
    for (const dp of pooled) {
      expect(dp.digest()).toBe(alone.digest());
      expect(await dp.read()).toEqual(await alone.read());
    }
  });

  it('refuses overlapping calls instead of interleaving them', async () => {
    const dp = new EmulatedDatapath();
    const a = dp.apply(emptyChange());
    await expect(dp.apply(emptyChange())).rejects.toMatchObject({ code: 'INTERNAL' });
    await a;
  });
});
