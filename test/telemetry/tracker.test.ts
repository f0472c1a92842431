import { describe, expect, it } from 'vitest';
import type { AckInfo } from '../../controlplane/xds/index.js';
import { Tracker, type TrackerEvent } from '../../controlplane/telemetry/index.js';

const NODES = [
  { cluster: 'eu', node: 'eu-1' },
  { cluster: 'eu', node: 'eu-2' },
  { cluster: 'us', node: 'us-1' },
];
const id = (cluster: string, node: string) => ({ key: `${cluster}/${node}`, cluster, node });

function setup() {
  const clock = {
    t: 1_000_000,
    now() {
      return this.t;
    },
  };
  const tracker = new Tracker({ clock, revisions: 4 });
  const events: TrackerEvent[] = [];
  tracker.subscribe((e) => events.push(e));
  const revision = (revision: number, affected: string[]) =>
    tracker.onRevision({ revision, commitTime: clock.t, affected, removed: [] }, NODES);
  const ack = (cluster: string, node: string, a: Partial<AckInfo> & { revision: number }) =>
    tracker.onAck(id(cluster, node), {
      nonce: 'n',
      applyDurationUs: 2000,
      digest: 'd',
      expectedDigest: 'd',
      current: true,
      sentAt: clock.t,
      receivedAt: clock.t,
      ...a,
    });
  for (const n of NODES) tracker.onStreamOpen(id(n.cluster, n.node));
  return { clock, tracker, events, revision, ack };
}

describe('Tracker', () => {
  it('a node the revision did not affect is synced without receiving anything; affected ones are pending with age', () => {
    const { clock, tracker, revision, ack } = setup();
    revision(10, ['eu/eu-1', 'eu/eu-2', 'us/us-1']);
    for (const n of NODES) ack(n.cluster, n.node, { revision: 10 });
    clock.t += 100;
    revision(11, ['eu/eu-1']);
    clock.t += 250;
    expect(tracker.view('eu', 'eu-1')).toMatchObject({
      state: 'pending',
      lagMs: 250,
      syncedRevision: 10,
    });
    expect(tracker.view('eu', 'eu-2')).toMatchObject({ state: 'in-sync', syncedRevision: 11 });
    expect(tracker.view('us', 'us-1')).toMatchObject({ state: 'in-sync', syncedRevision: 11 });
    const skew = tracker.skew();
    expect(skew).toMatchObject({ revision: 11, pending: 1, ageMs: 250 });
    expect(skew.clusters.find((c) => c.name === 'eu')).toMatchObject({
      pending: 1,
      ageMs: 250,
      syncedRevision: 10,
    });
    expect(skew.revisions[0]).toMatchObject({
      revision: 11,
      affected: 1,
      target: 1,
      pending: 1,
      convergedAt: 0,
    });
  });

  it('splits latency on the serving clock and records the skew window from first to last ACK', () => {
    const { clock, tracker, events, revision, ack } = setup();
    revision(10, ['eu/eu-1', 'eu/eu-2', 'us/us-1']);
    const commit = clock.t;
    ack('eu', 'eu-1', { revision: 10, sentAt: commit + 5, receivedAt: commit + 20 });
    ack('eu', 'eu-2', { revision: 10, sentAt: commit + 5, receivedAt: commit + 40 });
    ack('us', 'us-1', {
      revision: 10,
      sentAt: commit + 5,
      receivedAt: commit + 70,
      applyDurationUs: 10_000,
    });
    const r = tracker.revision(10)!;
    expect(r).toMatchObject({ acks: 3, pending: 0, skewWindowMs: 50, convergedAt: commit + 70 });
    expect(r.latency.propagation).toEqual({ meanMs: (20 + 40 + 70) / 3, maxMs: 70 });
    expect(r.latency.queue.maxMs).toBe(5);
    expect(r.latency.apply.maxMs).toBe(10);
    expect(r.latency.transfer.maxMs).toBe(70 - 5 - 10);
    const converged = events.filter((e) => e.type === 'converged');
    expect(converged.map((e) => e.type === 'converged' && e.cluster)).toEqual(['eu', 'us']);
  });

  it('one ACK of a coalesced push covers every revision it brought, each with its own latency', () => {
    const { clock, tracker, revision, ack } = setup();
    revision(10, ['eu/eu-1']);
    const c10 = clock.t;
    clock.t += 30;
    revision(11, ['eu/eu-1']);
    clock.t += 10;
    ack('eu', 'eu-1', { revision: 11, sentAt: clock.t, receivedAt: clock.t + 5 });
    expect(tracker.revision(10)).toMatchObject({ acks: 1, pending: 0 });
    expect(tracker.revision(11)).toMatchObject({ acks: 1, pending: 0 });
    expect(tracker.revision(10)!.latency.propagation.maxMs).toBe(clock.t + 5 - c10);
    expect(tracker.revision(11)!.latency.propagation.maxMs).toBe(15);
    expect(tracker.view('eu', 'eu-1')).toMatchObject({ state: 'in-sync', syncedRevision: 11 });
  });

  it('a NACK keeps the node on its last good revision with the error; a later ACK clears it', () => {
    const { tracker, revision, ack } = setup();
    revision(10, ['eu/eu-1', 'eu/eu-2', 'us/us-1']);
    for (const n of NODES) ack(n.cluster, n.node, { revision: 10 });
    revision(11, ['us/us-1']);
    tracker.onNack(id('us', 'us-1'), {
      revision: 11,
      nonce: 'n',
      message: 'policy map full',
      resourceNames: ['ep/x'],
      heldRevision: 10,
    });
    expect(tracker.view('us', 'us-1')).toMatchObject({
      state: 'nacked',
      syncedRevision: 10,
      error: 'revision 11 rejected: policy map full (ep/x)',
    });
    expect(tracker.revision(11)).toMatchObject({ nacks: 1, pending: 1 });
    revision(12, ['us/us-1']);
    ack('us', 'us-1', { revision: 12 });
    expect(tracker.view('us', 'us-1')).toMatchObject({
      state: 'in-sync',
      syncedRevision: 12,
      error: '',
    });
  });

  it('a reported digest that differs from the expected one is diverged until it matches again', () => {
    const { tracker, revision, ack } = setup();
    revision(10, ['eu/eu-1', 'eu/eu-2', 'us/us-1']);
    ack('eu', 'eu-1', { revision: 10 });
    tracker.onVerification(id('eu', 'eu-1'), { revision: 10, digest: 'x', expectedDigest: 'd' });
    expect(tracker.view('eu', 'eu-1')).toMatchObject({
      state: 'diverged',
      error: 'datapath digest x differs from expected d',
    });
    tracker.onVerification(id('eu', 'eu-1'), { revision: 10, digest: 'd', expectedDigest: 'd' });
    expect(tracker.view('eu', 'eu-1').state).toBe('in-sync');
  });

  it('keeps aggregates for the last N revisions only, and forgets removed nodes', () => {
    const { tracker, revision, ack } = setup();
    for (let r = 10; r < 20; r++) {
      revision(r, ['eu/eu-1']);
      ack('eu', 'eu-1', { revision: r });
    }
    expect(tracker.revisions().map((r) => r.revision)).toEqual([19, 18, 17, 16]);
    expect(tracker.revisions().every((r) => r.pending === 0)).toBe(true);
    tracker.onRevision(
      { revision: 20, commitTime: 0, affected: [], removed: ['us/us-1'] },
      NODES.slice(0, 2),
    );
    expect(tracker.clusters().map((c) => c.name)).toEqual(['eu']);
  });

  it('a disconnected node is disconnected since the stream closed', () => {
    const { clock, tracker, revision } = setup();
    revision(10, []);
    clock.t += 7;
    tracker.onStreamClosed(id('eu', 'eu-2'));
    expect(tracker.view('eu', 'eu-2')).toMatchObject({ state: 'disconnected', since: clock.t });
  });
});
