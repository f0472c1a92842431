// Stream lifecycle over real gRPC: reconnects, broken revisions and protocol
// mismatches, against ScriptedControlPlane standing in for the control plane.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, TYPE_IPCACHE } from '../../proto/index.js';

/** a version this build does not speak */
const OTHER = PROTOCOL_VERSION + 1;
import { EMPTY, connected, revision, setup, teardown } from './agent-harness.js';
import { endpoint, part, shard } from './fixtures.js';

afterEach(teardown);

describe('NodeAgent connection over gRPC', () => {
  it('reconnects after the stream ends, announcing what it holds, discarding a partial revision, enforcing meanwhile', async () => {
    const h = await setup();
    const s1 = await connected(h);
    const a = shard(0, [['10.1.0.1/32', 1]]);
    const ep = endpoint('default/a', '10.1.0.1');
    const { answer } = await revision(s1, 1, [a, ep]);
    // Half a revision, then the control plane goes away.
    s1.send(
      part({
        typeUrl: TYPE_IPCACHE,
        revision: 2,
        nonce: 'half',
        resources: [shard(5, [['10.9.0.1/32', 9]])],
      }),
    );
    expect(await s1.requests.none(100)).toBeUndefined();
    s1.end();

    expect(await h.events('disconnected').next()).toMatchObject({
      wasConnected: true,
      error: { code: 'UNAVAILABLE' },
    });
    const s2 = await h.cp.nextStream();
    const first = await s2.nextRequest();
    expect(first.initialResourceVersions).toEqual(
      [a, ep]
        .map((r) => ({ typeUrl: r.typeUrl, name: r.name, version: r.version }))
        .sort((x, y) => (x.typeUrl < y.typeUrl ? -1 : 1)),
    );
    expect(first.node).toEqual({ id: 'eu-1', cluster: 'eu' });
    expect(h.datapath.digest()).toBe(answer.digest); // fail-static: nothing cleared, nothing half-applied

    // The current revision, with nothing to change: ACKed with the same digest.
    s2.send(part({ typeUrl: TYPE_IPCACHE, revision: 2, nonce: 'cur', complete: true }));
    expect(await s2.nextRequest()).toMatchObject({
      responseNonce: 'cur',
      appliedRevision: 2,
      digest: answer.digest,
    });
  });

  it('ends the stream when a new revision starts before the previous one completed', async () => {
    const h = await setup();
    const s1 = await connected(h);
    s1.send(
      part({
        typeUrl: TYPE_IPCACHE,
        revision: 3,
        nonce: 'a',
        resources: [shard(0, [['10.1.0.1/32', 1]])],
      }),
    );
    s1.send(part({ typeUrl: TYPE_IPCACHE, revision: 4, nonce: 'b', complete: true }));
    expect((await h.events('disconnected').next()).error?.message).toMatch(
      /revision 4 .* before revision 3 was complete/,
    );
    const s2 = await h.cp.nextStream();
    expect((await s2.nextRequest()).initialResourceVersions).toEqual([]);
  });

  it('reports a protocol mismatch announced in the response header and keeps retrying', async () => {
    const h = await setup({ cp: { protocolVersion: OTHER } });
    const s = await h.cp.nextStream();
    s.send(
      part({
        typeUrl: TYPE_IPCACHE,
        revision: 1,
        nonce: 'x',
        resources: [shard(0, [['10.1.0.1/32', 1]])],
        complete: true,
      }),
    );
    const ev = await h.events('disconnected').next();
    expect(ev.wasConnected).toBe(false);
    expect(ev.error?.code).toBe('PROTOCOL_MISMATCH');
    expect(ev.error?.message).toBe(
      `control plane speaks protocol ${OTHER}, this agent speaks ${PROTOCOL_VERSION}`,
    );
    await h.cp.nextStream(); // retried
    expect(h.agent.status()).toMatchObject({
      appliedRevision: 0,
      lastError: { code: 'PROTOCOL_MISMATCH' },
    });
    expect(h.datapath.digest()).toBe(EMPTY);
  });

  it('surfaces the message of a FAILED_PRECONDITION refusal', async () => {
    const h = await setup({
      cp: {
        protocolVersion: OTHER,
        refuse: {
          code: GrpcStatus.FAILED_PRECONDITION,
          details: `agent speaks protocol ${PROTOCOL_VERSION}, need ${OTHER}`,
        },
      },
    });
    const ev = await h.events('disconnected').next();
    expect(ev.error?.code).toBe('PROTOCOL_MISMATCH');
    expect(ev.error?.message).toBe(
      `control plane speaks protocol ${OTHER}, this agent speaks ${PROTOCOL_VERSION}; ` +
        `control plane refused the stream: agent speaks protocol ${PROTOCOL_VERSION}, need ${OTHER}`,
    );
  });
});
