import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS_MS, TrackerDashboardSource } from '../../controlplane/dashboard/index.js';
import { FakeTracker } from './fake-tracker.js';

describe('the dashboard reading the tracker', () => {
  it('counts progress as target minus pending (a NACK is never synced) and buckets each covered revision latency', () => {
    const now = 10_000;
    const tracker = new FakeTracker(() => now);
    tracker.revisionList = [
      {
        revision: 7,
        commitTime: 9_000,
        target: 3,
        pending: 1,
        nacks: 1,
        acks: 2,
        skewWindowMs: 40,
      },
    ];
    const source = new TrackerDashboardSource(tracker, { now: () => now });
    source.subscribe(() => {});
    tracker.emit({
      type: 'ack',
      covered: [
        { revision: 7, split: { propagationMs: 3 } },
        { revision: 7, split: { propagationMs: 120 } },
      ],
    });
    tracker.emit({ type: 'ack', covered: [{ revision: 7, split: { propagationMs: 90_000 } }] });
    const [r] = source.revisions();
    expect(r).toMatchObject({ revision: 7, affected: 3, synced: 2, nacked: 1, skewWindowMs: 40 });
    const counts = [...r!.latencyCounts];
    expect(counts).toHaveLength(LATENCY_BUCKETS_MS.length + 1);
    expect(counts[0]).toBe(1); // ≤ 5 ms
    expect(counts[LATENCY_BUCKETS_MS.indexOf(250)]).toBe(1); // 120 ms
    expect(counts.at(-1)).toBe(1); // over a minute
    tracker.emit({ type: 'revision-evicted', revision: 7 });
    expect(source.revisions()[0]!.latencyCounts.every((c) => c === 0)).toBe(true);
  });

  it('gives the instant a node fell behind, stable across reads while the tracker only ages its lag', () => {
    let now = 50_000;
    const tracker = new FakeTracker(() => now);
    tracker.setNode('eu', {
      name: 'eu-3',
      state: 'nacked',
      since: 49_500,
      pendingSince: 48_000,
      error: 'revision 9 rejected',
    });
    tracker.setNode('eu', { name: 'eu-1', state: 'pending', since: 49_000, pendingSince: 49_000 });
    const source = new TrackerDashboardSource(tracker, { now: () => now });
    const read = (): Map<string, number> =>
      new Map([...source.nodes()].map((n) => [n.name, n.pendingSince]));
    expect(read()).toEqual(
      new Map([
        ['eu-3', 48_000],
        ['eu-1', 49_000],
      ]),
    );
    now += 2_500;
    expect(read().get('eu-3')).toBe(48_000);
    tracker.setNode('eu', { name: 'eu-3', state: 'in-sync', pendingSince: 0, error: '' });
    expect(read().get('eu-3')).toBe(0);
  });

  it('gives a node history newest first as ACKs with latency and apply time', () => {
    const tracker = new FakeTracker(() => 0);
    tracker.setNode('eu', { name: 'eu-1' });
    tracker.histories.set('eu/eu-1', [
      { revision: 4, ackedAt: 100, propagationMs: 12, applyMs: 0.5 },
      { revision: 5, ackedAt: 200, propagationMs: 8, applyMs: 0.25 },
    ]);
    const source = new TrackerDashboardSource(tracker, { now: () => 0 });
    expect(source.history('eu', 'eu-1')).toEqual([
      { revision: 5, outcome: 'ack', at: 200, latencyMs: 8, applyMs: 0.25 },
      { revision: 4, outcome: 'ack', at: 100, latencyMs: 12, applyMs: 0.5 },
    ]);
    expect(source.history('eu', 'nope')).toEqual([]);
  });
});
