import { describe, expect, it } from 'vitest';
import {
  DashboardFeed,
  TrackerDashboardSource,
  applyDelta,
  syncedRevisionOf,
  type FeedTimers,
  type FeedUpdate,
  type WireState,
} from '../../controlplane/dashboard/index.js';
import { FakeTracker } from './fake-tracker.js';

/** Timers driven by the test: `advance(ms)` runs what falls due. */
function manualTime(): { now: () => number; timers: FeedTimers; advance(ms: number): void } {
  let now = 1_000_000;
  let due: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 1;
  return {
    now: () => now,
    timers: {
      setTimeout: (fn, ms) => {
        const id = nextId++;
        due.push({ at: now + ms, fn, id });
        return id;
      },
      clearTimeout: (h) => {
        due = due.filter((d) => d.id !== h);
      },
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        due.sort((a, b) => a.at - b.at);
        const next = due[0];
        if (!next || next.at > end) break;
        due.shift();
        now = next.at;
        next.fn();
      }
      now = end;
    },
  };
}

describe('dashboard feed', () => {
  it('coalesces a burst of tracker changes into at most N updates per second, and a page following them matches the tracker', () => {
    const time = manualTime();
    const tracker = new FakeTracker(time.now);
    for (let i = 1; i <= 50; i++) tracker.setNode('eu', { name: `eu-${i}` });
    const source = new TrackerDashboardSource(tracker, { now: time.now });
    const feed = new DashboardFeed(source, {
      clock: { now: time.now },
      timers: time.timers,
      maxUpdatesPerSecond: 4,
    });
    feed.start();
    let page: WireState = structuredClone(feed.current());
    const updates: FeedUpdate[] = [];
    feed.subscribe((u) => {
      updates.push(u);
      page = applyDelta(page, JSON.parse(u.json) as never)!;
    });

    // 10 revisions a second for 2 s, each ACKed by every node 30 ms later.
    for (let step = 0; step < 20; step++) {
      const rev = step + 1;
      tracker.latestRevision = rev;
      tracker.latestCommitTime = time.now();
      for (let i = 1; i <= 50; i++)
        tracker.setNode('eu', { name: `eu-${i}`, state: 'pending', pendingSince: time.now() });
      tracker.emit({ type: 'revision', revision: rev });
      time.advance(30);
      for (let i = 1; i <= 50; i++) {
        tracker.setNode('eu', {
          name: `eu-${i}`,
          state: 'in-sync',
          ackedRevision: rev,
          syncedRevision: rev,
          pendingSince: 0,
        });
        tracker.emit({ type: 'ack', covered: [{ revision: rev, split: { propagationMs: 30 } }] });
      }
      time.advance(70);
    }
    time.advance(1000);

    // 2 s of changes at 4/s: the first goes out at once, then one per 250 ms.
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.length).toBeLessThanOrEqual(4 * 3 + 1);
    expect(updates.map((u) => u.delta.seq)).toEqual(
      updates.map((_, i) => feed.current().seq - updates.length + 1 + i),
    );
    expect(page).toEqual(feed.current());
    expect(page.revision).toBe(20);
    expect(page.nodes.every((n) => n[2] === 0 && syncedRevisionOf(n, page.revision) === 20)).toBe(
      true,
    );
    feed.stop();
  });

  it('sends nothing while nothing a page shows changes', () => {
    const time = manualTime();
    const tracker = new FakeTracker(time.now);
    tracker.setNode('eu', { name: 'eu-1' });
    const feed = new DashboardFeed(new TrackerDashboardSource(tracker, { now: time.now }), {
      clock: { now: time.now },
      timers: time.timers,
    });
    feed.start();
    const updates: FeedUpdate[] = [];
    feed.subscribe((u) => updates.push(u));
    tracker.emit({ type: 'push' });
    tracker.emit({ type: 'connection' });
    time.advance(5000);
    expect(updates).toEqual([]);
    feed.stop();
    expect(tracker.listenerCount).toBe(1); // the source keeps following until closed
  });
});
