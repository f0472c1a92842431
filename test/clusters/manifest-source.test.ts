// ManifestSource against a real nats-server with JetStream.
import { cp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from 'nats';
import { connect } from 'nats';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeSetEvent, SourceHealthEvent } from '../../common/index.js';
import {
  CHANGE_SET_HEADER,
  CHANGE_SET_PART_HEADER,
  EVENTS_STREAM,
  SUBJECT_EVENTS_PREFIX,
  SUBJECT_HEALTH_PREFIX,
  joinChangeSetParts,
  objectKey,
  parseEventsSubject,
  parsePartHeader,
  silentLogger,
} from '../../common/index.js';
import { ManifestSource, ensureEventsStream } from '../../clusters/src/index.js';
import { tempDir, useInfra, type TempDir } from '../harness/index.js';
import { clusterYaml, namespaceYaml, podYaml, writeTree } from './fixtures.js';
import { eventually, quietPeriod } from './wait.js';

const infra = useInfra();
let nc: NatsConnection;
let dir: TempDir;
let source: ManifestSource | undefined;

beforeAll(async () => {
  nc = await connect({ servers: infra.nats.url });
});
afterAll(async () => {
  await nc.drain();
});
beforeEach(async () => {
  dir = await tempDir('clusters-nats-');
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await dir.cleanup();
});

interface StoredPart {
  subject: string;
  changeSet: string;
  part: string;
  traceparent: string;
  event: ChangeSetEvent;
}

/** Every message stored for a cluster (the parts of its change sets), in stream order. */
async function storedParts(cluster: string): Promise<StoredPart[]> {
  const jsm = await nc.jetstreamManager();
  const { state } = await jsm.streams.info(EVENTS_STREAM);
  const parts: StoredPart[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq += 1) {
    const msg = await jsm.streams.getMessage(EVENTS_STREAM, { seq });
    if (parseEventsSubject(msg.subject)?.cluster !== cluster) continue;
    parts.push({
      subject: msg.subject,
      changeSet: msg.header.get(CHANGE_SET_HEADER),
      part: msg.header.get(CHANGE_SET_PART_HEADER),
      traceparent: msg.header.get('traceparent'),
      event: msg.json<ChangeSetEvent>(),
    });
  }
  return parts;
}

/** Every change set stored for a cluster, put back together from its parts, in stream order. */
async function storedEvents(cluster: string): Promise<ChangeSetEvent[]> {
  const events: ChangeSetEvent[] = [];
  let group: StoredPart[] = [];
  for (const p of await storedParts(cluster)) {
    const { index, count } = parsePartHeader(p.part)!;
    // One message per kind, on the kind's subject; every part carries the change set's W3C trace context.
    expect(p.subject).toBe(
      `${SUBJECT_EVENTS_PREFIX}.${cluster}.${p.event.upserts[0]?.kind ?? p.event.deletes[0]?.kind ?? 'Cluster'}`,
    );
    expect(p.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // A source publishes a change set's parts back to back, in order.
    expect(index).toBe(group.length + 1);
    if (group.length > 0) {
      expect(p.changeSet).toBe(group[0]!.changeSet);
      expect(p.traceparent).toBe(group[0]!.traceparent);
    }
    group.push(p);
    if (index < count) continue;
    events.push(joinChangeSetParts(group.map((g, i) => ({ index: i + 1, event: g.event }))));
    group = [];
  }
  expect(group).toEqual([]);
  return events;
}

function collectHealth(cluster: string): { events: SourceHealthEvent[]; sub: Subscription } {
  const events: SourceHealthEvent[] = [];
  const sub = nc.subscribe(`${SUBJECT_HEALTH_PREFIX}.${cluster}`, {
    callback: (_err, msg) => events.push(msg.json<SourceHealthEvent>()),
  });
  return { events, sub };
}

async function start(healthIntervalMs = 2_000): Promise<ManifestSource> {
  source = new ManifestSource({
    dir: dir.path,
    nc,
    debounceMs: 100,
    healthIntervalMs,
    logger: silentLogger(),
  });
  const started = await source.start();
  expect(started.status).toBe('published');
  return source;
}

describe('ManifestSource on NATS JetStream', () => {
  it('publishes the folder as one full change set, one message per kind, creating the stream only if missing', async () => {
    await cp('clusters/demo/eu', dir.path, { recursive: true });
    const health = collectHealth('eu');
    await start();

    const parts = await storedParts('eu');
    expect(parts.map((p) => [p.subject, p.part])).toEqual([
      ['meshplane.events.eu.Namespace', '1/5'],
      ['meshplane.events.eu.ServiceAccount', '2/5'],
      ['meshplane.events.eu.Pod', '3/5'],
      ['meshplane.events.eu.Service', '4/5'],
      ['meshplane.events.eu.CiliumNetworkPolicy', '5/5'],
    ]);
    expect(new Set(parts.map((p) => p.changeSet)).size).toBe(1);
    for (const p of parts) expect(p.event).toMatchObject({ full: true, cluster: { name: 'eu' } });

    const events = await storedEvents('eu');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      apiVersion: 'meshplane/v1',
      full: true,
      deletes: [],
      cluster: { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'], podCIDR: '10.1.0.0/16' },
      origin: `manifests:${dir.path}`,
    });
    expect(events[0]?.upserts.map(objectKey).sort()).toEqual([
      'CiliumNetworkPolicy/production/frontend-to-billing-service',
      'Namespace//billing',
      'Namespace//production',
      'Pod/billing/transactions-7c9d5b8f4-m8wzt',
      'Pod/billing/transactions-7c9d5b8f4-x2kqv',
      'Pod/production/billing-service-5b8d7f9c6-t4vxk',
      'Pod/production/billing-service-5b8d7f9c6-w9npd',
      'Pod/production/frontend-6f4b9c7d8-h5pjr',
      'Pod/production/frontend-6f4b9c7d8-q7lzn',
      'Pod/production/legacy-service-84d6c5b9f-zr7mc',
      'Service/production/billing-service',
      'ServiceAccount/billing/transactions-sa',
    ]);
    await eventually(() =>
      expect(health.events[0]).toMatchObject({ cluster: 'eu', lastError: '' }),
    );
    health.sub.unsubscribe();

    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(EVENTS_STREAM);
    expect(info.config).toMatchObject({ subjects: ['meshplane.events.>'], storage: 'file' });
    // Someone else's configuration of an existing stream is left alone.
    await jsm.streams.update(EVENTS_STREAM, {
      ...info.config,
      description: 'owned by the control plane',
    });
    await ensureEventsStream(jsm);
    expect((await jsm.streams.info(EVENTS_STREAM)).config.description).toBe(
      'owned by the control plane',
    );
  });

  it('publishes exactly one delta per save, and deletes for removed files', async () => {
    await writeTree(dir.path, {
      'cluster.yaml': clusterYaml('delta', 11, ['delta-1', 'delta-2']),
      'ns.yaml': namespaceYaml('shop'),
      'web.yaml': [podYaml('shop', 'web-1'), podYaml('shop', 'web-2')].join('---\n'),
      'db.yaml': podYaml('shop', 'db', { spec: '  nodeName: delta-2\n' }),
    });
    await start();
    expect(await storedEvents('delta')).toHaveLength(1);

    await writeFile(
      join(dir.path, 'web.yaml'),
      [
        podYaml('shop', 'web-1'),
        podYaml('shop', 'web-2', { labels: { app: 'web', tier: 'front' } }),
      ].join('---\n'),
    );
    await eventually(async () => expect(await storedEvents('delta')).toHaveLength(2));
    await quietPeriod();
    const afterEdit = await storedEvents('delta');
    expect(afterEdit).toHaveLength(2);
    expect(afterEdit[1]).toMatchObject({ full: false, deletes: [] });
    expect(afterEdit[1]?.upserts).toEqual([
      expect.objectContaining({
        kind: 'Pod',
        name: 'web-2',
        labels: { app: 'web', tier: 'front' },
      }),
    ]);

    await rm(join(dir.path, 'db.yaml'));
    await eventually(async () => expect(await storedEvents('delta')).toHaveLength(3));
    await quietPeriod();
    const afterDelete = await storedEvents('delta');
    expect(afterDelete).toHaveLength(3);
    expect(afterDelete[2]).toMatchObject({
      full: false,
      upserts: [],
      deletes: [{ kind: 'Pod', namespace: 'shop', name: 'db' }],
    });
  });

  it('publishes nothing for a malformed save, reports it in health, and recovers when fixed', async () => {
    await writeTree(dir.path, {
      'cluster.yaml': clusterYaml('broken', 12, ['broken-1']),
      'ns.yaml': namespaceYaml('shop'),
      'web.yaml': podYaml('shop', 'web'),
    });
    const health = collectHealth('broken');
    await start(200);

    const bad = podYaml('shop', 'web', {
      spec: '  containers:\n    - name: web\n      ports: [{ containerPort: abc }]\n',
    });
    await writeFile(join(dir.path, 'web.yaml'), bad);
    const refused = await eventually(() => {
      const last = health.events.at(-1);
      expect(last?.lastError).not.toBe('');
      return last!;
    });
    expect(refused.lastError).toBe(
      `${join(dir.path, 'web.yaml')}: document 0: Pod/shop/web: spec.containers[0].ports[0].containerPort: ` +
        'must be an integer 1..65535, got string "abc"',
    );
    // Every interval repeats the error while it stands.
    const count = health.events.length;
    await eventually(() => expect(health.events.length).toBeGreaterThan(count + 1));
    expect(health.events.at(-1)?.lastError).toBe(refused.lastError);
    expect(await storedEvents('broken')).toHaveLength(1);

    await writeFile(
      join(dir.path, 'web.yaml'),
      podYaml('shop', 'web', { labels: { app: 'fixed' } }),
    );
    await eventually(async () => expect(await storedEvents('broken')).toHaveLength(2));
    const fixed = (await storedEvents('broken'))[1];
    expect(fixed).toMatchObject({ full: false, deletes: [] });
    expect(fixed?.upserts.map((o) => `${objectKey(o)} ${o.labels['app']}`)).toEqual([
      'Pod/shop/web fixed',
    ]);
    await eventually(() => expect(health.events.at(-1)?.lastError).toBe(''));
    health.sub.unsubscribe();
  });
});
