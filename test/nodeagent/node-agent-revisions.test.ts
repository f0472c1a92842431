// Revisions end to end over real gRPC: ScriptedControlPlane stands in for the
// control plane; each test scripts what it sends and checks what the agent answers.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Digest, ipcacheEntry } from '../../common/index.js';
import { PROTOCOL_VERSION, TYPE_ENDPOINT, TYPE_IPCACHE, TYPE_SERVICE } from '../../proto/index.js';
import { EMPTY, connected, revision, setup, teardown } from './agent-harness.js';
import { allow, endpoint, entriesOf, expectedDigest, part, service, shard } from './fixtures.js';

afterEach(teardown);

describe('NodeAgent revisions over gRPC', () => {
  it('opens with node, protocol version, capacity and no held versions', async () => {
    const h = await setup({
      capacity: { ipcacheEntries: 100, endpoints: 10, policyEntriesPerEndpoint: 20 },
    });
    const s = await h.cp.nextStream();
    const first = await s.nextRequest();
    expect(first.node).toEqual({ id: 'eu-1', cluster: 'eu' });
    expect(first.protocolVersion).toBe(PROTOCOL_VERSION);
    expect(first.capacity).toEqual({
      backend: 'emulated',
      ipcacheEntries: 100,
      endpoints: 10,
      policyEntriesPerEndpoint: 20,
    });
    expect(first.initialResourceVersions).toEqual([]);
    expect(first.responseNonce).toBe('');
    await h.events('connected').next();
    expect(h.agent.status().connection).toBe('connected');
  });

  it('applies a 3-part revision only when complete and ACKs it once with the digest of its resources', async () => {
    const h = await setup();
    const s = await connected(h);
    const ipcache = shard(0, [
      ['10.1.0.1/32', 0x10100],
      ['10.2.0.1/32', 0x20100],
    ]);
    const svc = service('default', 'web', ['10.1.0.1']);
    const ep = endpoint('default/web', '10.1.0.1', [allow(0x20100, 8080)]);

    s.send(part({ typeUrl: TYPE_IPCACHE, revision: 7, nonce: 'n1', resources: [ipcache] }));
    s.send(part({ typeUrl: TYPE_SERVICE, revision: 7, nonce: 'n2', resources: [svc] }));
    expect(await s.requests.none(200)).toBeUndefined();
    expect(h.datapath.digest()).toBe(EMPTY);
    expect(h.datapath.counts().ipcache).toBe(0);

    s.send(
      part({ typeUrl: TYPE_ENDPOINT, revision: 7, nonce: 'n3', resources: [ep], complete: true }),
    );
    const ack = await s.nextRequest();
    expect(ack.responseNonce).toBe('n3');
    expect(ack.appliedRevision).toBe(7);
    expect(ack.errorDetail).toBeUndefined();
    expect(ack.verification).toBe(false);
    expect(ack.digest).toBe(Digest.of(entriesOf([ipcache, svc, ep])).toString());
    expect(ack.applyDurationUs).toBeGreaterThanOrEqual(0);
    expect(ack.applyDurationUs).toBeLessThan(5_000_000);
    expect(await s.requests.none(200)).toBeUndefined(); // exactly one ACK

    expect(await h.events('revisionApplied').next()).toMatchObject({
      revision: 7,
      digest: ack.digest,
      resources: 3,
    });
    expect(h.agent.status()).toMatchObject({
      appliedRevision: 7,
      digest: ack.digest,
      resources: 3,
    });
    expect(h.datapath.counts()).toMatchObject({
      ipcache: 2,
      endpoints: 1,
      policyEntries: 1,
      services: 1,
    });
  });

  it('removes the state of removed_resources', async () => {
    const h = await setup();
    const s = await connected(h);
    const a = shard(0, [['10.1.0.1/32', 0x10100]]);
    const b = shard(1, [['10.1.0.2/32', 0x10101]]);
    const ep = endpoint('default/a', '10.1.0.1', [allow(0x10101, 80)]);
    const svc = service('default', 'web', ['10.1.0.1']);
    expect((await revision(s, 1, [a, b, ep, svc])).answer.digest).toBe(
      expectedDigest([a, b, ep, svc]),
    );

    const { answer, nonce } = await revision(
      s,
      2,
      [],
      [
        { typeUrl: TYPE_IPCACHE, name: b.name },
        { typeUrl: TYPE_ENDPOINT, name: ep.name },
      ],
    );
    expect(answer).toMatchObject({
      responseNonce: nonce,
      appliedRevision: 2,
      digest: expectedDigest([a, svc]),
    });
    expect(h.datapath.counts()).toMatchObject({
      ipcache: 1,
      endpoints: 0,
      policyEntries: 0,
      services: 1,
    });
  });

  it('NACKs a capacity overflow with RESOURCE_EXHAUSTED, stays on the last good state, then applies the next good revision', async () => {
    const h = await setup({ capacity: { ipcacheEntries: 2 } });
    const s = await connected(h);
    const a = shard(0, [
      ['10.1.0.1/32', 1],
      ['10.1.0.2/32', 2],
    ]);
    const good = (await revision(s, 1, [a])).answer;
    expect(good.appliedRevision).toBe(1);

    const b = shard(1, [['10.1.0.3/32', 3]]);
    const { answer: nack, nonce } = await revision(s, 2, [b]);
    expect(nack.responseNonce).toBe(nonce);
    expect(nack.errorDetail?.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(nack.errorDetail?.resourceNames).toEqual(['ipcache/1']);
    expect(nack.errorDetail?.message).toMatch(/ipcache would hold 3 entries, capacity is 2/);
    expect(nack.appliedRevision).toBe(1);
    expect(nack.digest).toBe(good.digest);
    expect(h.datapath.digest()).toBe(expectedDigest([a]));
    expect(await h.events('revisionRejected').next()).toMatchObject({
      revision: 2,
      heldRevision: 1,
    });
    expect(h.agent.status().lastRejected).toMatchObject({
      revision: 2,
      code: 'CAPACITY',
      resourceNames: ['ipcache/1'],
    });

    const a2 = shard(0, [['10.1.0.1/32', 1]]);
    const ack = (await revision(s, 3, [a2, b])).answer;
    expect(ack).toMatchObject({ appliedRevision: 3, digest: expectedDigest([a2, b]) });
    expect(ack.errorDetail).toBeUndefined();
  });

  it('NACKs too many policy entries for one endpoint, naming the endpoint resource', async () => {
    const h = await setup({ capacity: { policyEntriesPerEndpoint: 2 } });
    const s = await connected(h);
    const ep = endpoint('default/a', '10.1.0.1', [allow(1, 80), allow(2, 80), allow(3, 80)]);
    const { answer } = await revision(s, 1, [ep]);
    expect(answer.errorDetail).toMatchObject({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      resourceNames: [ep.name],
    });
    expect(answer.appliedRevision).toBe(0);
    expect(answer.digest).toBe(EMPTY);
  });

  it('NACKs an undecodable payload and an unknown type with INVALID_ARGUMENT', async () => {
    const h = await setup();
    const s = await connected(h);
    const a = shard(0, [['10.1.0.1/32', 1]]);
    const good = (await revision(s, 1, [a])).answer;

    s.send({
      typeUrl: TYPE_IPCACHE,
      meshRevision: 2,
      nonce: 'bad',
      // field 2, length 16, then one byte: truncated
      resources: [{ name: 'ipcache/9', version: 'v', payload: Buffer.from([0x12, 0x10, 0x01]) }],
      revisionComplete: true,
    });
    const nack = await s.nextRequest();
    expect(nack).toMatchObject({ responseNonce: 'bad', appliedRevision: 1, digest: good.digest });
    expect(nack.errorDetail).toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT,
      resourceNames: ['ipcache/9'],
    });
    expect(nack.errorDetail?.message).toMatch(
      /cannot decode meshplane.v1.IpcacheShard resource "ipcache\/9"/,
    );

    s.send({
      typeUrl: 'meshplane.v1.Nope',
      meshRevision: 3,
      nonce: 'nope',
      resources: [{ name: 'x', version: 'v', payload: Buffer.alloc(0) }],
      revisionComplete: true,
    });
    const unknown = await s.nextRequest();
    expect(unknown.errorDetail).toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT,
      resourceNames: ['x'],
    });
    expect(unknown.errorDetail?.message).toMatch(/unknown resource type "meshplane.v1.Nope"/);

    const dup = shard(1, [['10.1.0.2/32', 2]]);
    s.send(part({ typeUrl: TYPE_IPCACHE, revision: 4, nonce: 'd1', resources: [dup] }));
    s.send(
      part({ typeUrl: TYPE_IPCACHE, revision: 4, nonce: 'd2', resources: [dup], complete: true }),
    );
    const duplicate = await s.nextRequest();
    expect(duplicate).toMatchObject({
      responseNonce: 'd2',
      appliedRevision: 1,
      digest: good.digest,
    });
    expect(duplicate.errorDetail).toMatchObject({
      code: GrpcStatus.INVALID_ARGUMENT,
      resourceNames: ['ipcache/1'],
    });
  });

  it('sends unprompted verification reports with the digest of a full read', async () => {
    const h = await setup({ verifyIntervalMs: 50 });
    const s = await connected(h);
    const a = shard(0, [['10.1.0.1/32', 1]]);
    const { answer } = await revision(s, 4, [a]);
    const report = await s.nextRequest(2000);
    expect(report).toMatchObject({
      verification: true,
      appliedRevision: 4,
      digest: answer.digest,
      responseNonce: '',
    });
    expect(report.errorDetail).toBeUndefined();

    // Someone writes the map behind the agent's back: the next report shows it.
    h.maps.ipcache.set('10.66.0.1/32', 66);
    const tampered = Digest.of([...entriesOf([a]), ipcacheEntry('10.66.0.1/32', 66)]).toString();
    let next = await s.nextRequest(2000);
    while (next.digest === answer.digest) next = await s.nextRequest(2000);
    expect(next).toMatchObject({ verification: true, appliedRevision: 4, digest: tampered });
    expect(h.agent.status().lastVerification).toMatchObject({ digest: tampered, matches: false });
  });

  it('stops without clearing the datapath', async () => {
    const h = await setup();
    const s = await connected(h);
    const { answer } = await revision(s, 1, [shard(0, [['10.1.0.1/32', 1]])]);
    await h.agent.stop();
    await s.closed;
    expect(h.agent.status().connection).toBe('stopped');
    expect(h.datapath.digest()).toBe(answer.digest);
    expect(await h.datapath.verify()).toBe(answer.digest);
  });
});
