import { describe, expect, it } from 'vitest';
import { NODE_STATES, Tracker, type NodeView } from '../../controlplane/telemetry/index.js';

// The tracker keeps per-cluster counts as nodes change instead of scanning
// them on every read: after any sequence of events they must equal what a
// scan of the node views gives.
function scan(nodes: NodeView[], latest: number) {
  const states = Object.fromEntries(NODE_STATES.map((s) => [s, 0]));
  for (const n of nodes) states[n.state]! += 1;
  return {
    states,
    pending: nodes.filter((n) => n.syncedRevision < latest).length,
    ageMs: Math.max(0, ...nodes.map((n) => n.lagMs)),
    syncedRevision: Math.min(latest, ...nodes.map((n) => n.syncedRevision)),
  };
}

/** mulberry32: a seeded sequence, so a failure replays. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Tracker counts', () => {
  it('equal a scan of the nodes after a random sequence of revisions, ACKs, NACKs, divergences and disconnects', () => {
    const random = seededRandom(3);
    const clock = { t: 1_000, now: () => clock.t };
    const tracker = new Tracker({ clock, revisions: 8 });
    const nodes = Array.from({ length: 30 }, (_, i) => {
      const cluster = ['eu', 'us'][i % 2]!;
      return { cluster, node: `${cluster}-${i}`, key: `${cluster}/${cluster}-${i}` };
    });
    const all = nodes.map(({ cluster, node }) => ({ cluster, node }));
    let revision = 0;
    for (let step = 0; step < 2_000; step++) {
      clock.t += Math.floor(random() * 50);
      const n = nodes[Math.floor(random() * nodes.length)]!;
      const p = random();
      if (p < 0.05 || revision === 0) {
        revision += 1;
        const affected = nodes.filter(() => random() < 0.3).map((x) => x.key);
        tracker.onRevision({ revision, commitTime: clock.t, affected, removed: [] }, all);
      } else if (p < 0.6) {
        const expected = random() < 0.05 ? 'other' : 'd';
        tracker.onAck(n, {
          revision: revision - Math.floor(random() * 2),
          nonce: 'x',
          applyDurationUs: 100,
          digest: 'd',
          expectedDigest: expected,
          current: random() < 0.8,
          sentAt: clock.t,
          receivedAt: clock.t,
        });
      } else if (p < 0.65) {
        tracker.onNack(n, {
          revision,
          nonce: 'x',
          message: 'no',
          resourceNames: [],
          heldRevision: 0,
        });
      } else if (p < 0.7) {
        tracker.onStreamClosed(n);
      } else if (p < 0.85) {
        tracker.onStreamOpen(n);
      } else {
        tracker.onVerification(n, {
          revision,
          digest: random() < 0.5 ? 'd' : 'e',
          expectedDigest: 'd',
        });
      }
      const skew = tracker.skew();
      for (const c of skew.clusters) {
        const { nodes: views, name, ...kept } = c;
        expect({ step, name, ...kept }).toEqual({ step, name, ...scan(views, skew.revision) });
      }
      expect(tracker.countBehind(revision)).toBe(skew.clusters.reduce((a, c) => a + c.pending, 0));
    }
  });
});
