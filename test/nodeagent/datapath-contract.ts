// The contract every Datapath backend meets. The emulated backend runs it in
// emulated-datapath.test.ts; the eBPF backend will run the same function
// (in a *.privileged.test.ts) with its own factory.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Digest, isMeshError } from '../../common/index.js';
import { Direction, Verdict } from '../../proto/index.js';
import {
  DatapathError,
  type Datapath,
  type DatapathChange,
  type DatapathContents,
} from '../../nodeagent/index.js';
import { digestOf, emptyChange, ep, rule, sorted, svc } from './datapath-builders.js';

export { digestOf, emptyChange, ep, rule, sorted, svc };

export interface ContractCapacity {
  ipcacheEntries?: number;
  endpoints?: number;
  policyEntriesPerEndpoint?: number;
}

export interface DatapathUnderTest {
  datapath: Datapath;
  /** Writes an ipcache entry behind the datapath's back (as `bpftool map update` would); optional. */
  tamperIpcache?(prefix: string, identity: number): Promise<void>;
  /** Releases what the factory created (for eBPF: unpins the run's maps). */
  dispose(): Promise<void>;
}

export type DatapathFactory = (capacity: ContractCapacity) => Promise<DatapathUnderTest>;

const EMPTY = new Digest().toString();

export function describeDatapathContract(name: string, factory: DatapathFactory): void {
  describe(`Datapath contract: ${name}`, () => {
    const made: DatapathUnderTest[] = [];
    const make = async (capacity: ContractCapacity = {}): Promise<DatapathUnderTest> => {
      const dut = await factory(capacity);
      made.push(dut);
      return dut;
    };
    afterEach(async () => {
      for (const dut of made.splice(0)) await dut.dispose();
    });

    const expectConsistent = async (dp: Datapath): Promise<DatapathContents> => {
      const contents = await dp.read();
      expect(dp.digest()).toBe(digestOf(contents));
      expect(await dp.verify()).toBe(dp.digest());
      return contents;
    };

    it('starts empty and reports its capacity', async () => {
      const { datapath } = await make({
        ipcacheEntries: 10,
        endpoints: 3,
        policyEntriesPerEndpoint: 5,
      });
      expect(datapath.capacity).toMatchObject({
        ipcacheEntries: 10,
        endpoints: 3,
        policyEntriesPerEndpoint: 5,
      });
      expect(datapath.capacity.backend).not.toBe('');
      expect(datapath.digest()).toBe(EMPTY);
      expect(await datapath.verify()).toBe(EMPTY);
      expect(datapath.counts()).toEqual({
        ipcache: 0,
        endpoints: 0,
        policyEntries: 0,
        maxPolicyEntriesPerEndpoint: 0,
        services: 0,
      });
    });

    it('holds what was applied, and deletes bring it back to empty', async () => {
      const { datapath } = await make();
      const add = emptyChange();
      add.ipcache.upserts.push({ prefix: '10.1.0.5/32', identity: 0x10100, resource: 'ipcache/0' });
      add.ipcache.upserts.push({ prefix: 'fd00::5/128', identity: 0x10101, resource: 'ipcache/1' });
      add.endpoints.upserts.push({ ...ep('a', '10.1.0.5'), resource: 'endpoint/a' });
      add.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(0x10101, 80), rule(0x20100, 443, Verdict.VERDICT_DENY)],
        deletes: [],
      });
      add.services.upserts.push({ ...svc('web', ['10.1.0.5']), resource: 'service/web' });
      await datapath.apply(add);

      const contents = sorted(await expectConsistent(datapath));
      expect(contents.ipcache).toEqual([
        { prefix: '10.1.0.5/32', identity: 0x10100 },
        { prefix: 'fd00::5/128', identity: 0x10101 },
      ]);
      expect(contents.endpoints).toEqual([ep('a', '10.1.0.5')]);
      const policies = [
        {
          endpoint: 'eu/default/a',
          entries: [rule(0x10101, 80), rule(0x20100, 443, Verdict.VERDICT_DENY)],
        },
      ];
      expect(contents.policies).toEqual(
        sorted({ ipcache: [], endpoints: [], services: [], policies }).policies,
      );
      expect(contents.services).toEqual([svc('web', ['10.1.0.5'])]);
      // Exact prefixes only: a covering or a neighbouring prefix is not held.
      expect(datapath.holdsIpcachePrefix('10.1.0.5/32')).toBe(true);
      expect(datapath.holdsIpcachePrefix('fd00::5/128')).toBe(true);
      expect(datapath.holdsIpcachePrefix('10.1.0.4/31')).toBe(false);
      expect(datapath.holdsIpcachePrefix('10.1.0.6/32')).toBe(false);
      expect(datapath.counts()).toMatchObject({
        ipcache: 2,
        endpoints: 1,
        policyEntries: 2,
        services: 1,
      });

      const remove = emptyChange();
      remove.ipcache.deletes.push('10.1.0.5/32', 'fd00::5/128');
      remove.endpoints.deletes.push('eu/default/a'); // drops its policy map too
      remove.services.deletes.push('default/web');
      await datapath.apply(remove);
      await expectConsistent(datapath);
      expect(datapath.holdsIpcachePrefix('10.1.0.5/32')).toBe(false);
      expect(datapath.digest()).toBe(EMPTY);
      expect(datapath.counts()).toMatchObject({
        ipcache: 0,
        endpoints: 0,
        policyEntries: 0,
        services: 0,
      });
    });

    it('replaces values in place and deletes single policy entries', async () => {
      const { datapath } = await make({ ipcacheEntries: 1 });
      const first = emptyChange();
      first.ipcache.upserts.push({ prefix: '10.1.0.5/32', identity: 1, resource: 'ipcache/0' });
      first.endpoints.upserts.push({ ...ep('a', '10.1.0.5'), resource: 'endpoint/a' });
      first.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(7, 80), rule(8, 81)],
        deletes: [],
      });
      await datapath.apply(first);

      const second = emptyChange();
      // At capacity 1 an in-place update must still fit.
      second.ipcache.upserts.push({ prefix: '10.1.0.5/32', identity: 2, resource: 'ipcache/0' });
      second.endpoints.upserts.push({ ...ep('a', '10.1.0.5', 0x10199), resource: 'endpoint/a' });
      second.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(7, 80, Verdict.VERDICT_DENY)],
        deletes: [rule(8, 81)],
      });
      await datapath.apply(second);
      const c = sorted(await expectConsistent(datapath));
      expect(c.ipcache).toEqual([{ prefix: '10.1.0.5/32', identity: 2 }]);
      expect(c.endpoints[0]!.identity).toBe(0x10199);
      expect(c.policies).toEqual([
        { endpoint: 'eu/default/a', entries: [rule(7, 80, Verdict.VERDICT_DENY)] },
      ]);
    });

    it('treats deleting what it does not hold as a no-op', async () => {
      const { datapath } = await make();
      const change = emptyChange();
      change.ipcache.deletes.push('10.9.9.9/32');
      change.endpoints.deletes.push('eu/default/nope');
      change.services.deletes.push('default/nope');
      await datapath.apply(change);
      expect(datapath.digest()).toBe(EMPTY);
    });

    const base = async (dp: Datapath): Promise<DatapathContents> => {
      const c = emptyChange();
      c.ipcache.upserts.push({ prefix: '10.1.0.1/32', identity: 1, resource: 'ipcache/0' });
      c.endpoints.upserts.push({ ...ep('a', '10.1.0.1'), resource: 'endpoint/a' });
      c.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(1, 80)],
        deletes: [],
      });
      await dp.apply(c);
      return sorted(await dp.read());
    };

    const expectRefused = async (
      dp: Datapath,
      change: DatapathChange,
      code: 'CAPACITY' | 'VALIDATION',
      resources: string[],
      before: DatapathContents,
      digest: string,
    ): Promise<void> => {
      const err: unknown = await dp.apply(change).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DatapathError);
      expect(isMeshError(err, code)).toBe(true);
      expect([...(err as DatapathError).resourceNames]).toEqual(resources);
      // All-or-nothing: not one entry of the refused change is held.
      expect(sorted(await dp.read())).toEqual(before);
      expect(dp.digest()).toBe(digest);
      expect(await dp.verify()).toBe(digest);
    };

    it('refuses an ipcache overflow as a whole, naming the resources that add entries', async () => {
      const { datapath } = await make({ ipcacheEntries: 2 });
      const before = await base(datapath);
      const digest = datapath.digest();
      const c = emptyChange();
      c.ipcache.upserts.push({ prefix: '10.1.0.1/32', identity: 5, resource: 'ipcache/0' }); // in place: fits
      c.ipcache.upserts.push({ prefix: '10.1.0.2/32', identity: 2, resource: 'ipcache/1' });
      c.ipcache.upserts.push({ prefix: '10.1.0.3/32', identity: 3, resource: 'ipcache/2' });
      c.services.upserts.push({ ...svc('web', []), resource: 'service/web' });
      await expectRefused(datapath, c, 'CAPACITY', ['ipcache/1', 'ipcache/2'], before, digest);

      // Deleting in the same change makes room.
      c.ipcache.deletes.push('10.1.0.1/32');
      c.ipcache.upserts.shift();
      await datapath.apply(c);
      expect(datapath.counts().ipcache).toBe(2);
    });

    it('refuses too many endpoints and too many policy entries for one endpoint', async () => {
      const { datapath } = await make({ endpoints: 1, policyEntriesPerEndpoint: 2 });
      const before = await base(datapath);
      const digest = datapath.digest();

      const tooMany = emptyChange();
      tooMany.endpoints.upserts.push({ ...ep('b', '10.1.0.2'), resource: 'endpoint/b' });
      await expectRefused(datapath, tooMany, 'CAPACITY', ['endpoint/b'], before, digest);

      const bigPolicy = emptyChange();
      bigPolicy.ipcache.upserts.push({ prefix: '10.1.0.7/32', identity: 7, resource: 'ipcache/3' });
      bigPolicy.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(2, 80), rule(3, 80)],
        deletes: [],
      });
      await expectRefused(datapath, bigPolicy, 'CAPACITY', ['endpoint/a'], before, digest);

      bigPolicy.policies[0]!.deletes.push(rule(1, 80));
      await datapath.apply(bigPolicy);
      expect(datapath.counts()).toMatchObject({ policyEntries: 2, maxPolicyEntriesPerEndpoint: 2 });
    });

    it('refuses invalid changes as a whole, naming the resources', async () => {
      const { datapath } = await make();
      const before = await base(datapath);
      const digest = datapath.digest();

      const badPrefix = emptyChange();
      badPrefix.ipcache.upserts.push({ prefix: '10.1.0.9/32', identity: 9, resource: 'ipcache/0' });
      badPrefix.ipcache.upserts.push({
        prefix: '10.1.0.300/32',
        identity: 9,
        resource: 'ipcache/5',
      });
      await expectRefused(datapath, badPrefix, 'VALIDATION', ['ipcache/5'], before, digest);

      const orphan = emptyChange();
      orphan.policies.push({
        endpoint: 'eu/default/ghost',
        resource: 'endpoint/ghost',
        upserts: [rule(1, 80)],
        deletes: [],
      });
      await expectRefused(datapath, orphan, 'VALIDATION', ['endpoint/ghost'], before, digest);

      const deletedWithPolicy = emptyChange();
      deletedWithPolicy.endpoints.deletes.push('eu/default/a');
      deletedWithPolicy.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(2, 80)],
        deletes: [],
      });
      await expectRefused(
        datapath,
        deletedWithPolicy,
        'VALIDATION',
        ['endpoint/a'],
        before,
        digest,
      );

      const duplicate = emptyChange();
      duplicate.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [rule(2, 80), rule(2, 80, Verdict.VERDICT_DENY)],
        deletes: [],
      });
      await expectRefused(datapath, duplicate, 'VALIDATION', ['endpoint/a'], before, digest);

      const badEnum = emptyChange();
      badEnum.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [{ ...rule(2, 80), direction: Direction.DIRECTION_UNSPECIFIED }],
        deletes: [],
      });
      await expectRefused(datapath, badEnum, 'VALIDATION', ['endpoint/a'], before, digest);
    });

    it('refuses a key written twice in one change, in every table', async () => {
      const { datapath } = await make();
      const before = await base(datapath);
      const digest = datapath.digest();

      const twoShards = emptyChange();
      twoShards.ipcache.upserts.push({ prefix: '10.1.0.8/32', identity: 8, resource: 'ipcache/1' });
      twoShards.ipcache.upserts.push({ prefix: '10.1.0.8/32', identity: 9, resource: 'ipcache/2' });
      await expectRefused(datapath, twoShards, 'VALIDATION', ['ipcache/2'], before, digest);

      const writtenAndDeleted = emptyChange();
      writtenAndDeleted.ipcache.upserts.push({
        prefix: '10.1.0.1/32',
        identity: 7,
        resource: 'ipcache/0',
      });
      writtenAndDeleted.ipcache.deletes.push('10.1.0.1/32');
      // The repeat is the delete, which names no resource.
      await expectRefused(datapath, writtenAndDeleted, 'VALIDATION', [], before, digest);

      const twoServices = emptyChange();
      twoServices.services.upserts.push({ ...svc('web', []), resource: 'service/web' });
      twoServices.services.upserts.push({ ...svc('web', ['10.1.0.1']), resource: 'service/web2' });
      await expectRefused(datapath, twoServices, 'VALIDATION', ['service/web2'], before, digest);

      const endpointBoth = emptyChange();
      endpointBoth.endpoints.upserts.push({ ...ep('b', '10.1.0.2'), resource: 'endpoint/b' });
      endpointBoth.endpoints.deletes.push('eu/default/b');
      await expectRefused(datapath, endpointBoth, 'VALIDATION', [], before, digest);
    });

    it('changes nothing when aborted before applying', async () => {
      const { datapath } = await make();
      const before = await base(datapath);
      const c = emptyChange();
      c.ipcache.upserts.push({ prefix: '10.1.0.9/32', identity: 9, resource: 'ipcache/0' });
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(datapath.apply(c, { signal: controller.signal })).rejects.toThrow('stop');
      expect(sorted(await datapath.read())).toEqual(before);
    });

    it('verify() sees entries written behind its back; digest() does not', async () => {
      const dut = await make();
      if (dut.tamperIpcache === undefined) return;
      await base(dut.datapath);
      const applied = dut.datapath.digest();
      await dut.tamperIpcache('10.66.0.1/32', 66);
      const verified = await dut.datapath.verify();
      expect(verified).not.toBe(applied);
      expect(verified).toBe(digestOf(await dut.datapath.read()));
      expect(dut.datapath.digest()).toBe(applied);
    });

    it('holds port ranges like any entry: overlapping, replaced, deleted, dropped with the endpoint', async () => {
      const { datapath } = await make();
      const range = (
        identity: number,
        low: number,
        high: number,
        verdict = Verdict.VERDICT_ALLOW,
      ) => ({
        ...rule(identity, low, verdict),
        portHigh: high,
      });
      const c = emptyChange();
      c.endpoints.upserts.push({ ...ep('a', '10.1.0.5'), resource: 'endpoint/a' });
      c.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [
          range(7, 8000, 8010),
          range(7, 8005, 8020, Verdict.VERDICT_DENY),
          rule(7, 8005),
          range(0, 7000, 7010),
          { ...range(7, 5300, 5310), protocol: 17 },
        ],
        deletes: [],
      });
      await datapath.apply(c);
      let held = sorted(await expectConsistent(datapath));
      expect(held.policies[0]!.entries).toHaveLength(5);
      expect(held.policies[0]!.entries).toContainEqual(range(7, 8005, 8020, Verdict.VERDICT_DENY));

      const change = emptyChange();
      change.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [range(7, 8000, 8010, Verdict.VERDICT_AUDIT), range(7, 1, 65535)],
        deletes: [range(7, 8005, 8020), range(0, 7000, 7010)],
      });
      await datapath.apply(change);
      held = sorted(await expectConsistent(datapath));
      expect(held.policies[0]!.entries).toEqual(
        sorted({
          ipcache: [],
          endpoints: [],
          services: [],
          policies: [
            {
              endpoint: 'eu/default/a',
              entries: [
                range(7, 1, 65535),
                range(7, 8000, 8010, Verdict.VERDICT_AUDIT),
                rule(7, 8005),
                { ...range(7, 5300, 5310), protocol: 17 },
              ],
            },
          ],
        }).policies[0]!.entries,
      );

      const gone = emptyChange();
      gone.endpoints.deletes.push('eu/default/a');
      await datapath.apply(gone);
      await expectConsistent(datapath);
      expect(datapath.digest()).toBe(EMPTY);
    });

    it('refuses a port without a protocol (ANY comes expanded into TCP, UDP and SCTP)', async () => {
      const { datapath } = await make();
      const before = await base(datapath);
      const digest = datapath.digest();
      const c = emptyChange();
      c.policies.push({
        endpoint: 'eu/default/a',
        resource: 'endpoint/a',
        upserts: [{ ...rule(2, 8000), portHigh: 8010, protocol: 0 }],
        deletes: [],
      });
      await expectRefused(datapath, c, 'VALIDATION', ['endpoint/a'], before, digest);
    });

    it('keeps digest() = verify() over random port-range changes', async () => {
      const range = fc
        .record({
          identity: fc.constantFrom(0, 7, 8),
          protocol: fc.constantFrom(6, 17),
          low: fc.integer({ min: 1, max: 60 }),
          width: fc.integer({ min: 0, max: 40 }),
          verdict: fc.constantFrom(
            Verdict.VERDICT_ALLOW,
            Verdict.VERDICT_DENY,
            Verdict.VERDICT_AUDIT,
          ),
        })
        .map(({ identity, protocol, low, width, verdict }) => ({
          ...rule(identity, low, verdict),
          protocol,
          portHigh: low + width,
        }));
      const key = (e: { identity: number; protocol: number; portLow: number; portHigh: number }) =>
        `${e.identity}|${e.protocol}|${e.portLow}|${e.portHigh}`;
      const states = fc.array(fc.uniqueArray(range, { selector: key, maxLength: 8 }), {
        minLength: 1,
        maxLength: 4,
      });
      await fc.assert(
        fc.asyncProperty(states, async (seq) => {
          const dut = await factory({});
          const { datapath } = dut;
          try {
            const add = emptyChange();
            add.endpoints.upserts.push({ ...ep('a', '10.1.0.5'), resource: 'endpoint/a' });
            await datapath.apply(add);
            let held = new Map<string, ReturnType<typeof rule>>();
            for (const state of seq) {
              const next = new Map(state.map((e) => [key(e), e]));
              const c = emptyChange();
              c.policies.push({
                endpoint: 'eu/default/a',
                resource: 'endpoint/a',
                upserts: state,
                deletes: [...held].filter(([k]) => !next.has(k)).map(([, e]) => e),
              });
              await datapath.apply(c);
              held = next;
              const contents = await datapath.read();
              expect(contents.policies[0]!.entries.map(key).sort()).toEqual(
                [...held.keys()].sort(),
              );
              expect(datapath.digest()).toBe(digestOf(contents));
              expect(await datapath.verify()).toBe(datapath.digest());
            }
          } finally {
            await dut.dispose();
          }
        }),
        { numRuns: 25 },
      );
    });

    it('keeps digest() = verify() = digest of its contents over random change sequences', async () => {
      const prefixes = Array.from({ length: 12 }, (_, i) => `10.2.0.${i}/32`);
      const pods = ['a', 'b', 'c', 'd'];
      const step = fc.record({
        ipcache: fc.dictionary(
          fc.constantFrom(...prefixes),
          fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        ),
        endpoints: fc.dictionary(
          fc.constantFrom(...pods),
          fc.option(
            fc.record({
              identity: fc.integer({ min: 0x10100, max: 0x10103 }),
              rules: fc.uniqueArray(fc.integer({ min: 1, max: 6 }), { maxLength: 5 }),
              deny: fc.boolean(),
            }),
            { nil: undefined },
          ),
        ),
      });
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
          const dut = await factory({});
          const { datapath } = dut;
          try {
            // The model: what the datapath must hold after each step.
            const model = new Map<string, string>();
            const heldEndpoints = new Map<string, Set<number>>();
            for (const s of steps) {
              const c = emptyChange();
              for (const [prefix, identity] of Object.entries(s.ipcache)) {
                if (identity === undefined) c.ipcache.deletes.push(prefix);
                else c.ipcache.upserts.push({ prefix, identity, resource: 'ipcache/0' });
              }
              for (const [pod, spec] of Object.entries(s.endpoints)) {
                const name = `eu/default/${pod}`;
                if (spec === undefined) {
                  c.endpoints.deletes.push(name);
                  heldEndpoints.delete(name);
                  continue;
                }
                c.endpoints.upserts.push({
                  ...ep(pod, '10.3.0.1', spec.identity),
                  resource: `endpoint/${pod}`,
                });
                const held = heldEndpoints.get(name) ?? new Set<number>();
                const verdict = spec.deny ? Verdict.VERDICT_DENY : Verdict.VERDICT_ALLOW;
                c.policies.push({
                  endpoint: name,
                  resource: `endpoint/${pod}`,
                  upserts: spec.rules.map((id) => rule(id, 80, verdict)),
                  deletes: [...held]
                    .filter((id) => !spec.rules.includes(id))
                    .map((id) => rule(id, 80)),
                });
                heldEndpoints.set(name, new Set(spec.rules));
              }
              await datapath.apply(c);
              for (const u of c.ipcache.upserts) model.set(u.prefix, String(u.identity));
              for (const d of c.ipcache.deletes) model.delete(d);
              const contents = await datapath.read();
              expect(new Map(contents.ipcache.map((e) => [e.prefix, String(e.identity)]))).toEqual(
                model,
              );
              expect(contents.endpoints.length).toBe(heldEndpoints.size);
              expect(datapath.digest()).toBe(digestOf(contents));
              expect(await datapath.verify()).toBe(datapath.digest());
            }
          } finally {
            await dut.dispose();
          }
        }),
        { numRuns: 60 },
      );
    });
  });
}
