// A change set travels as one message per kind and is committed only whole:
// splitting and joining give back the change set, and the assembler releases
// a change set only when every part has arrived, never half of one.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  eventsSubject,
  formatPartHeader,
  joinChangeSetParts,
  objectKey,
  parseEventsSubject,
  parsePartHeader,
  splitChangeSet,
  type ChangeSetEvent,
  type MeshObject,
  type MeshObjectKind,
} from '../../common/index.js';
import { ChangeSetAssembler, type ArrivedPart } from '../../controlplane/ingest/index.js';

const KINDS: MeshObjectKind[] = ['Namespace', 'Pod', 'Service', 'ServiceExport', 'NetworkPolicy'];

function object(kind: MeshObjectKind, name: string, cluster = 'eu'): MeshObject {
  return {
    kind,
    cluster,
    namespace: kind === 'Namespace' ? '' : 'shop',
    name,
    labels: {},
  } as MeshObject;
}

function changeSet(
  upserts: MeshObject[],
  deletes: MeshObject[] = [],
  full = false,
): ChangeSetEvent {
  return {
    apiVersion: 'meshplane/v1',
    cluster: { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' },
    full,
    upserts,
    deletes: deletes.map((d) => ({ kind: d.kind, namespace: d.namespace, name: d.name })),
    origin: 'test',
  };
}

/** The messages a source publishes for `ev`, as the consumer sees them. */
function arrivals(ev: ChangeSetEvent, id: string, firstSeq: number): ArrivedPart[] {
  return splitChangeSet(ev).map((p, i) => ({
    cluster: ev.cluster.name,
    seq: firstSeq + i,
    changeSet: id,
    index: p.index,
    count: p.count,
    event: p.event,
  }));
}

const keys = (ev: ChangeSetEvent | undefined): string[] =>
  [
    ...(ev?.upserts ?? []).map(objectKey),
    ...(ev?.deletes ?? []).map((d) => `-${objectKey(d)}`),
  ].sort();

const changeSetArb = fc
  .record({
    upserts: fc.uniqueArray(fc.tuple(fc.constantFrom(...KINDS), fc.constantFrom('a', 'b')), {
      selector: ([k, n]) => `${k}/${n}`,
      maxLength: 6,
    }),
    deletes: fc.uniqueArray(fc.tuple(fc.constantFrom(...KINDS), fc.constantFrom('c', 'd')), {
      selector: ([k, n]) => `${k}/${n}`,
      maxLength: 3,
    }),
    full: fc.boolean(),
  })
  .map(({ upserts, deletes, full }) =>
    changeSet(
      upserts.map(([k, n]) => object(k, n)),
      deletes.map(([k, n]) => object(k, n)),
      full,
    ),
  );

describe('change set parts', () => {
  it('one part per kind named, each on its kind subject; joined in any order they give back the change set (property)', () => {
    fc.assert(
      fc.property(changeSetArb, fc.infiniteStream(fc.nat()), (ev, rand) => {
        const parts = splitChangeSet(ev);
        const kinds = new Set([...ev.upserts, ...ev.deletes].map((o) => o.kind));
        expect(parts).toHaveLength(Math.max(1, kinds.size));
        for (const [i, p] of parts.entries()) {
          expect([p.index, p.count]).toEqual([i + 1, parts.length]);
          expect(p.event).toMatchObject({ cluster: ev.cluster, full: ev.full, origin: ev.origin });
          for (const o of [...p.event.upserts, ...p.event.deletes]) expect(o.kind).toBe(p.kind);
          expect(parseEventsSubject(eventsSubject('eu', p.kind))).toEqual({
            cluster: 'eu',
            kind: p.kind,
          });
          expect(parsePartHeader(formatPartHeader(p.index, p.count))).toEqual({
            index: p.index,
            count: p.count,
          });
        }
        const shuffled = [...parts].sort(() => (rand.next().value % 2 === 0 ? -1 : 1));
        const joined = joinChangeSetParts(shuffled);
        expect(keys(joined)).toEqual(keys(ev));
        expect(joined).toMatchObject({ cluster: ev.cluster, full: ev.full });
      }),
    );
  });

  it('reads subjects and part headers strictly', () => {
    expect(parseEventsSubject('meshplane.events.eu')).toEqual({ cluster: 'eu', kind: undefined });
    expect(parseEventsSubject('meshplane.events.eu.Pod.x')).toBeUndefined();
    expect(parseEventsSubject('meshplane.health.eu')).toBeUndefined();
    expect(parseEventsSubject('meshplane.events..Pod')).toBeUndefined();
    for (const bad of ['0/1', '2/1', '1/', '/1', '1/2/3', ' 1/2', '1/65', 'a/b'])
      expect(parsePartHeader(bad)).toBeUndefined();
    expect(splitChangeSet(changeSet([]))).toEqual([
      { kind: 'Cluster', index: 1, count: 1, event: changeSet([]) },
    ]);
  });
});

describe('ChangeSetAssembler', () => {
  it('releases each change set once, whole, when its last part arrives, whatever interleaves with it (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('eu', 'us'), changeSetArb), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.infiniteStream(fc.nat()),
        (sets, rand) => {
          // Each cluster's change sets in order, parts back to back; clusters interleave at random.
          let seq = 0;
          const queues = new Map<string, ArrivedPart[][]>();
          for (const [i, [cluster, ev]] of sets.entries()) {
            const e = { ...ev, cluster: { ...ev.cluster, name: cluster } };
            const parts = arrivals(e, `cs${i}`, 0);
            queues.set(cluster, [...(queues.get(cluster) ?? []), parts]);
          }
          const streams = [...queues.values()].map((q) => q.flat());
          const assembler = new ChangeSetAssembler();
          const released: { cluster: string; event: ChangeSetEvent; seq: number }[] = [];
          while (streams.some((s) => s.length > 0)) {
            const live = streams.filter((s) => s.length > 0);
            const from = live[rand.next().value % live.length]!;
            const part = { ...from.shift()!, seq: ++seq };
            const out = assembler.add(part);
            expect(out.abandoned).toBeUndefined();
            expect(out.refused).toBeUndefined();
            if (out.complete) {
              expect(out.complete.seq).toBe(seq);
              released.push(out.complete);
            }
          }
          expect(assembler.waiting()).toEqual([]);
          for (const cluster of queues.keys()) {
            const want = sets.filter(([c]) => c === cluster).map(([, ev]) => keys(ev));
            expect(released.filter((r) => r.cluster === cluster).map((r) => keys(r.event))).toEqual(
              want,
            );
          }
        },
      ),
    );
  });

  it('never releases part of a change set: one cut short is dropped when the next one of its cluster arrives', () => {
    const assembler = new ChangeSetAssembler();
    const x = arrivals(changeSet([object('Namespace', 'shop'), object('Pod', 'a')]), 'x', 1);
    const y = arrivals(changeSet([object('Pod', 'b')]), 'y', 3);
    const other = arrivals(
      {
        ...changeSet([object('Pod', 'c', 'us')]),
        cluster: { name: 'us', id: 2, nodes: [], podCIDR: '10.2.0.0/16' },
      },
      'o',
      2,
    );
    expect(assembler.add(x[0]!)).toEqual({});
    expect(assembler.add({ ...other[0]!, cluster: 'us' }).complete?.cluster).toBe('us');
    expect(assembler.waiting()).toEqual([{ cluster: 'eu', changeSet: 'x', have: 1, count: 2 }]);
    const out = assembler.add(y[0]!);
    expect(out.abandoned).toEqual({ cluster: 'eu', changeSet: 'x', seqs: [1], count: 2 });
    expect(keys(out.complete?.event)).toEqual(['Pod/shop/b']);
    // A straggler of x after y starts x again and never completes on its own.
    expect(assembler.add(x[1]!).complete).toBeUndefined();
  });

  it('takes parts in any order and a redelivered part once', () => {
    const assembler = new ChangeSetAssembler();
    const x = arrivals(
      changeSet([object('Namespace', 'shop'), object('Pod', 'a'), object('Service', 's')]),
      'x',
      1,
    );
    expect(assembler.add(x[2]!).complete).toBeUndefined();
    expect(assembler.add(x[0]!).complete).toBeUndefined();
    expect(assembler.add(x[0]!).complete).toBeUndefined();
    const done = assembler.add(x[1]!).complete;
    expect(keys(done?.event)).toEqual(['Namespace//shop', 'Pod/shop/a', 'Service/shop/s']);
    expect(done?.seqs).toEqual([1, 2, 3]);
    expect(done?.seq).toBe(3);
  });

  it('refuses the rest of a change set one part of which was refused, and one whose parts disagree', () => {
    const assembler = new ChangeSetAssembler();
    const x = arrivals(changeSet([object('Namespace', 'shop'), object('Pod', 'a')]), 'x', 1);
    expect(assembler.refuse('eu', 'x')).toBeUndefined();
    expect(assembler.add(x[1]!)).toEqual({ refused: true });
    expect(assembler.waiting()).toEqual([]);

    const y = arrivals(changeSet([object('Namespace', 'shop'), object('Pod', 'a')]), 'y', 3);
    expect(assembler.add(y[0]!)).toEqual({});
    expect(assembler.add({ ...y[1]!, event: { ...y[1]!.event, full: true } })).toEqual({
      refused: true,
    });
    const z = arrivals(changeSet([object('Namespace', 'shop'), object('Pod', 'a')]), 'z', 5);
    expect(assembler.add(z[0]!)).toEqual({});
    expect(assembler.add({ ...z[1]!, count: 3 })).toEqual({ refused: true });
  });
});
