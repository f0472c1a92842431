// The ingest election (runWhileLeader) against a real etcd: a leader whose
// lease is gone — what CPU starvation beyond the TTL does — stops its work
// and is elected again without waiting (leaving nothing behind on the
// replica's signal), and a leader that stops hands over at once, without the
// others waiting for its (long) lease to end.
import { getEventListeners } from 'node:events';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/index.js';
import { runWhileLeader } from '../../controlplane/election/index.js';
import { useInfra, waitFor } from '../harness/index.js';

describe('runWhileLeader (real etcd)', () => {
  const infra = useInfra();
  const clients: Etcd3[] = [];
  const stops: AbortController[] = [];
  let admin: Etcd3;
  beforeAll(() => {
    admin = new Etcd3({ hosts: infra.etcd.endpoint });
  });
  afterAll(() => {
    for (const s of stops) s.abort();
    for (const c of clients) c.close();
    admin?.close();
  });

  /** A replica with its own etcd client; records its terms of leadership. */
  function replica(prefix: string, name: string, ttlSeconds: number) {
    const client = new Etcd3({ hosts: infra.etcd.endpoint });
    clients.push(client);
    const stop = new AbortController();
    stops.push(stop);
    const terms: { ended: boolean }[] = [];
    const done = runWhileLeader(
      client.namespace(prefix),
      'ingest',
      name,
      stop.signal,
      silentLogger(),
      async (leadership) => {
        const term = { ended: false };
        terms.push(term);
        await new Promise((resolve) =>
          leadership.addEventListener('abort', resolve, { once: true }),
        );
        term.ended = true;
      },
      { ttlSeconds },
    );
    return { terms, stop: () => stop.abort(), done, signal: stop.signal };
  }

  const candidates = async (prefix: string) =>
    Object.keys(await admin.getAll().prefix(`${prefix}election/ingest/`).strings());

  it('a leader whose lease is revoked ends its term and is elected again', async () => {
    const prefix = 'test-election-lost/';
    // etcd3 learns of the revocation from its next keepalive, sent every third of the TTL.
    const a = replica(prefix, 'a', 3);
    await waitFor('a to lead', () => a.terms.length === 1);
    const [key] = await candidates(prefix);
    const leaseId = key!.slice(`${prefix}election/ingest/`.length);
    await admin.leaseClient.leaseRevoke({ ID: leaseId });
    await waitFor('a to lead again', () => a.terms.length === 2, { timeoutMs: 30_000 });
    expect(a.terms[0]!.ended).toBe(true);
    expect(a.terms[1]!.ended).toBe(false);
    // The replica's own signal lives through every round: no round may leave a listener on it
    // (one per campaign piled up, and with etcd away a round runs every half second).
    expect(getEventListeners(a.signal, 'abort')).toHaveLength(0);
    // A new lease, a new candidate key; the revoked one is gone.
    expect(await candidates(prefix)).not.toContain(key);
    a.stop();
    await a.done;
  }, 60_000);

  it('a leader that stops hands over at once; the other never led meanwhile', async () => {
    const prefix = 'test-election-handover/';
    // Far longer than the test waits: the handover must not rely on the lease running out.
    const a = replica(prefix, 'a', 600);
    await waitFor('a to lead', () => a.terms.length === 1);
    const b = replica(prefix, 'b', 600);
    await waitFor('b to campaign', async () => (await candidates(prefix)).length === 2);
    expect(b.terms).toHaveLength(0);
    a.stop();
    await a.done;
    expect(a.terms[0]!.ended).toBe(true);
    // With a 600 s lease, b leads only because a resigned (revoked its lease).
    await waitFor('b to lead', () => b.terms.length === 1, { timeoutMs: 30_000 });
    expect(await candidates(prefix)).toHaveLength(1);
    b.stop();
    await b.done;
    expect(await candidates(prefix)).toHaveLength(0);
  }, 60_000);
});
