// Per-source NATS credentials against a real nats-server 2.9: what `meshctl up`
// generates, loaded the way the processes load it. The server itself must
// refuse a source speaking for another cluster or reading the stream.
import { statSync } from 'node:fs';
import { AckPolicy, connect, type NatsConnection, type NatsError } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMeshNatsCredentials, type MeshNatsCredentials } from '../../cli/index.js';
import {
  ensureEventsStream,
  natsAuthOptions,
  natsEventSink,
  readNatsCredentials,
} from '../../clusters/src/index.js';
import { EVENTS_STREAM } from '../../common/index.js';
import { startNats, type NatsServer } from '../../launcher/index.js';
import { tempDir, type TempDir } from '../harness/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('per-source NATS credentials', () => {
  let dir: TempDir;
  let creds: MeshNatsCredentials;
  let nats: NatsServer;
  let cp: NatsConnection;
  let eu: NatsConnection;

  const login = async (file: string): Promise<NatsConnection> =>
    connect({ servers: nats.url, ...natsAuthOptions(await readNatsCredentials(file)) });

  beforeAll(async () => {
    dir = await tempDir('nats-creds-');
    // `eu-2` shares a prefix with `eu`: NATS matches whole tokens, so neither covers the other.
    creds = await writeMeshNatsCredentials(`${dir.path}/nats`, ['eu', 'eu-2', 'us']);
    nats = await startNats({ startTimeoutMs: 45_000, natsAuthorization: creds.authorization });
    cp = await login(creds.controlPlaneFile);
    // As the control plane does before it reports ready.
    await ensureEventsStream(await cp.jetstreamManager());
    eu = await login(creds.sourceFiles.get('eu')!);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([eu?.close(), cp?.close()]);
    await nats?.stop();
    await dir?.cleanup();
  });

  it('writes each credentials file readable by its owner only', () => {
    expect(statSync(`${dir.path}/nats`).mode & 0o777).toBe(0o700);
    for (const file of [creds.controlPlaneFile, ...creds.sourceFiles.values()]) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
    }
  });

  it("refuses a source's JetStream publish to another cluster's subject", async () => {
    const violations = watchViolations(eu);
    const sink = natsEventSink(eu, { createStream: false, ackTimeoutMs: 2_000 });
    const err = await sink.publishEvent('meshplane.events.us', enc('{}'), 'forged-1').then(
      () => undefined,
      (e: unknown) => e as NatsError,
    );
    expect(err?.code).toBe('PERMISSIONS_VIOLATION');
    expect(err?.permissionContext).toEqual({
      operation: 'publish',
      subject: 'meshplane.events.us',
      queue: undefined,
    });
    expect(await violations.settle(eu)).toContainEqual({
      operation: 'publish',
      subject: 'meshplane.events.us',
    });
    expect(await storedSubjects(cp)).not.toContain('meshplane.events.us');
  });

  it("refuses a source's core publishes to another cluster's events and health", async () => {
    const health: string[] = [];
    const sub = cp.subscribe('meshplane.health.>', { callback: (_, m) => health.push(m.subject) });
    await cp.flush();
    const violations = watchViolations(eu);
    const forged = [
      'meshplane.events.us',
      'meshplane.events.us.Pod',
      'meshplane.events.eu-2',
      'meshplane.events.eu-2.Pod',
      'meshplane.events.eu.Pod.x',
      'meshplane.health.us',
    ];
    for (const subject of forged) eu.publish(subject, enc('{}'));
    eu.publish('meshplane.health.eu', enc('{}'));
    const refused = await violations.settle(eu);
    await cp.flush();
    sub.unsubscribe();
    expect(refused.map((v) => v.subject)).toEqual(forged);
    expect(health).toEqual(['meshplane.health.eu']);
    expect(await storedSubjects(cp)).not.toContain('meshplane.events.eu-2');
  });

  it("lets a source answer the control plane's change-set requests for its own cluster only", async () => {
    const sink = natsEventSink(eu, { createStream: false });
    const seen: string[] = [];
    const stop = sink.onApplyRequest!('eu', (request) => {
      seen.push(request.id);
      return Promise.resolve({ ok: true, objects: [], unchanged: true });
    });
    await eu.flush();
    const reply = await cp.request(
      'meshplane.apply.eu',
      enc(
        JSON.stringify({
          apiVersion: 'meshplane/v1',
          id: 'cs-1',
          mode: 'apply',
          dryRun: true,
          files: [],
        }),
      ),
      { timeout: 5_000 },
    );
    expect(reply.json()).toEqual({ ok: true, objects: [], unchanged: true });
    expect(seen).toEqual(['cs-1']);
    stop();
    // Listening for another cluster's change sets is refused by the server.
    const violations = watchViolations(eu);
    const other = sink.onApplyRequest!('us', () =>
      Promise.resolve({ ok: true, objects: [], unchanged: true }),
    );
    expect(await violations.settle(eu)).toContainEqual({
      operation: 'subscription',
      subject: 'meshplane.apply.us',
    });
    other();
    // Nobody may answer for us: the request finds no responder.
    const err = await cp.request('meshplane.apply.us', enc('{}'), { timeout: 2_000 }).then(
      () => undefined,
      (e: unknown) => e as NatsError,
    );
    expect(err?.code).toBe('503');
  });

  it('lets a source publish its own change sets into the stream, where the control plane reads them', async () => {
    const sink = natsEventSink(eu, { createStream: false });
    const seq = await sink.publishEvent(
      'meshplane.events.eu.Pod',
      enc('{"own":true}'),
      'own-1',
      undefined,
      {
        changeSet: 'own',
        index: 1,
        count: 1,
      },
    );
    const consumer = await (
      await cp.jetstreamManager()
    ).consumers.add(EVENTS_STREAM, {
      durable_name: 'security-test',
      ack_policy: AckPolicy.Explicit,
      filter_subject: 'meshplane.events.eu.>',
    });
    const m = await (
      await cp.jetstream().consumers.get(EVENTS_STREAM, consumer.name)
    ).next({
      expires: 5_000,
    });
    expect(m?.seq).toBe(seq);
    expect(m?.json()).toEqual({ own: true });
    expect(m?.headers?.get('Meshplane-Change-Set')).toBe('own');
    expect(m?.headers?.get('Meshplane-Part')).toBe('1/1');
    m?.ack();
  });

  it.each([
    ['every cluster’s events', 'meshplane.events.>'],
    ['another cluster’s events', 'meshplane.events.us'],
    ['everyone’s replies (the control plane’s consumer deliveries)', '_INBOX.>'],
    ['another source’s replies', '_INBOX.source.us.>'],
    ['the replies of a source whose name it prefixes', '_INBOX.source.eu-2.>'],
  ])('refuses a source subscribing to %s', async (_, subject) => {
    await expect(subscription(eu, subject)).resolves.toBe('PERMISSIONS_VIOLATION');
  });

  it('refuses a source every JetStream API call: it cannot read, create or inspect the stream', async () => {
    await expect(eu.jetstreamManager()).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    for (const api of [
      `$JS.API.STREAM.MSG.GET.${EVENTS_STREAM}`,
      `$JS.API.DIRECT.GET.${EVENTS_STREAM}`,
      `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}`,
      `$JS.API.STREAM.INFO.${EVENTS_STREAM}`,
      `$JS.API.STREAM.CREATE.${EVENTS_STREAM}`,
      `$JS.API.STREAM.DELETE.${EVENTS_STREAM}`,
    ]) {
      await expect(eu.request(api, enc('{}'), { timeout: 2_000 })).rejects.toMatchObject({
        code: 'PERMISSIONS_VIOLATION',
      });
    }
    // …which is why a source with credentials leaves the stream to the control plane.
    const creating = natsEventSink(eu, { createStream: true, ackTimeoutMs: 2_000 });
    await expect(creating.ensureStream()).rejects.toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
  });

  it('keeps the connection of a refused source up', () => {
    expect(eu.isClosed()).toBe(false);
  });
});

/** Permission violations the server reports on `nc`'s status stream, until settle(). */
function watchViolations(nc: NatsConnection): {
  settle(nc: NatsConnection): Promise<{ operation: string; subject: string }[]>;
} {
  const statuses = nc.status();
  const seen: { operation: string; subject: string }[] = [];
  void (async () => {
    for await (const s of statuses) {
      if (s.permissionContext) {
        seen.push({
          operation: s.permissionContext.operation,
          subject: s.permissionContext.subject,
        });
      }
    }
  })();
  return {
    async settle(conn) {
      // The server answers a connection in order: every -ERR arrives before the PONG.
      await conn.flush();
      await new Promise((resolve) => setTimeout(resolve, 20));
      // The watcher itself ends when the connection closes.
      return [...seen];
    },
  };
}

/** 'PERMISSIONS_VIOLATION' when the server refuses the subscription, else 'allowed'. */
async function subscription(nc: NatsConnection, subject: string): Promise<string> {
  const sub = nc.subscribe(subject);
  const ended = (async () => {
    try {
      for await (const _ of sub) {
        // a message would mean it was allowed; keep draining until unsubscribed
      }
      return 'allowed';
    } catch (err) {
      return (err as NatsError).code;
    }
  })();
  await nc.flush();
  setTimeout(() => sub.unsubscribe(), 50);
  return ended;
}

async function storedSubjects(cp: NatsConnection): Promise<string[]> {
  const info = await (
    await cp.jetstreamManager()
  ).streams.info(EVENTS_STREAM, { subjects_filter: '>' });
  return Object.keys(info.state.subjects ?? {});
}
