import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeSetEvent, SourceHealthEvent } from '../../common/index.js';
import { joinChangeSetParts, silentLogger } from '../../common/index.js';
import type { EventPart, EventSink } from '../../clusters/src/index.js';
import { ManifestSource } from '../../clusters/src/index.js';
import { tempDir, type TempDir } from '../harness/index.js';
import { clusterYaml, namespaceYaml, podYaml, writeTree } from './fixtures.js';
import { eventually, quietPeriod } from './wait.js';

/**
 * An EventSink that records what it is sent and fails while `down` or for
 * the next `failures` publishes. Like JetStream, it numbers the messages it
 * stores and drops a message whose id it stored already; `events` are the
 * change sets put back together from their parts.
 */
class FakeSink implements EventSink {
  readonly events: ChangeSetEvent[] = [];
  readonly health: SourceHealthEvent[] = [];
  readonly #stored = new Map<string, number>();
  #parts: { index: number; event: ChangeSetEvent }[] = [];
  down = false;
  failures = 0;
  /** the next publishes are stored but their PubAck is lost (then the sink goes down) */
  lostAcks = 0;
  attempts = 0;

  ensureStream(): Promise<void> {
    return this.down ? Promise.reject(new Error('no JetStream')) : Promise.resolve();
  }

  publishEvent(
    subject: string,
    payload: Uint8Array,
    msgID: string,
    _traceparent?: string,
    part?: EventPart,
  ): Promise<number> {
    this.attempts += 1;
    if (this.down || this.failures > 0) {
      this.failures = Math.max(0, this.failures - 1);
      return Promise.reject(new Error('timeout waiting for PubAck'));
    }
    const stored = this.#stored.get(msgID);
    if (stored !== undefined) return Promise.resolve(stored);
    const seq = this.#stored.size + 1;
    this.#stored.set(msgID, seq);
    const event = JSON.parse(new TextDecoder().decode(payload)) as ChangeSetEvent;
    expect(subject.startsWith(`meshplane.events.${event.cluster.name}.`)).toBe(true);
    if (part?.index === 1) this.#parts = [];
    this.#parts.push({ index: part?.index ?? 1, event });
    if (part === undefined || part.index === part.count) {
      this.events.push(joinChangeSetParts(this.#parts));
      this.#parts = [];
    }
    if (this.lostAcks > 0) {
      this.lostAcks -= 1;
      this.down = true;
      return Promise.reject(new Error('timeout waiting for PubAck'));
    }
    return Promise.resolve(seq);
  }

  publishHealth(_subject: string, payload: Uint8Array): void {
    this.health.push(JSON.parse(new TextDecoder().decode(payload)) as SourceHealthEvent);
  }

  maxPayload(): number {
    return 1 << 20;
  }
}

let dir: TempDir;
let sink: FakeSink;
let source: ManifestSource | undefined;

beforeEach(async () => {
  dir = await tempDir('clusters-source-');
  sink = new FakeSink();
  await writeTree(dir.path, {
    'cluster.yaml': clusterYaml('eu', 1, ['eu-1']),
    'ns.yaml': namespaceYaml('n'),
    'a.yaml': podYaml('n', 'a'),
  });
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await dir.cleanup();
});

function startSource(): ManifestSource {
  source = new ManifestSource({
    dir: dir.path,
    sink,
    debounceMs: 50,
    backoff: { initialMs: 20, maxMs: 100 },
    logger: silentLogger(),
  });
  return source;
}

describe('ManifestSource (fake sink)', () => {
  it('retries a failed publish until acknowledged', async () => {
    sink.failures = 2;
    const started = await startSource().start();
    // Two parts (Namespace, Pod): the first fails twice, then both go out.
    expect(started).toEqual({ status: 'published', cluster: 'eu', seq: 2 });
    expect(sink.attempts).toBe(4);
    expect(sink.events).toHaveLength(1);
    expect(sink.events[0]?.full).toBe(true);
  });

  it('keeps changes made while NATS is away and sends them as one change set', async () => {
    await startSource().start();
    sink.down = true;
    await writeFile(join(dir.path, 'b.yaml'), podYaml('n', 'b'));
    await quietPeriod(500);
    await writeFile(join(dir.path, 'a.yaml'), podYaml('n', 'a', { labels: { app: 'changed' } }));
    // Both saves were loaded (and their publishes failed) before NATS comes back.
    await quietPeriod(500);
    sink.down = false;
    await eventually(() => expect(sink.events).toHaveLength(2));
    await quietPeriod(300);
    expect(sink.events).toHaveLength(2);
    expect(sink.events[1]?.upserts.map((o) => `${o.name} ${JSON.stringify(o.labels)}`)).toEqual([
      'a {"app":"changed"}',
      'b {"app":"b"}',
    ]);
  });

  it('after a publish whose PubAck was lost, re-sends what it changed as now desired, so the mesh ends at the folder either way', async () => {
    await startSource().start();
    // b is added: the change set is stored, but its PubAck is lost and NATS goes away.
    sink.lostAcks = 1;
    await writeFile(join(dir.path, 'b.yaml'), podYaml('n', 'b'));
    await eventually(() => expect(sink.events).toHaveLength(2));
    expect(sink.events[1]?.upserts.map((o) => o.name)).toEqual(['b']);
    // While it is away, b is removed again: the folder is back to what was acknowledged.
    await rm(join(dir.path, 'b.yaml'));
    await quietPeriod(500);
    sink.down = false;
    // The stream holds b's upsert, so the next change set must delete it.
    await eventually(() => expect(sink.events).toHaveLength(3));
    expect(sink.events[2]).toMatchObject({
      full: false,
      upserts: [],
      deletes: [{ kind: 'Pod', namespace: 'n', name: 'b' }],
    });
    await quietPeriod(300);
    expect(sink.events).toHaveLength(3);
  });

  it('refuses a change of cluster name or id, and sends a change of nodes', async () => {
    await startSource().start();
    await writeFile(join(dir.path, 'cluster.yaml'), clusterYaml('other', 1, ['eu-1']));
    await eventually(() =>
      expect(source?.lastError).toMatch(/cluster name changed from eu to other/),
    );
    expect(sink.health.at(-1)).toMatchObject({ cluster: 'eu', lastError: source?.lastError });
    await writeFile(join(dir.path, 'cluster.yaml'), clusterYaml('eu', 7, ['eu-1']));
    await eventually(() => expect(source?.lastError).toMatch(/cluster id changed from 1 to 7/));
    expect(sink.events).toHaveLength(1);

    // An editor's rename-on-save.
    await writeFile(join(dir.path, '.cluster.yaml.tmp'), clusterYaml('eu', 1, ['eu-1', 'eu-2']));
    await rename(join(dir.path, '.cluster.yaml.tmp'), join(dir.path, 'cluster.yaml'));
    await eventually(() => expect(sink.events).toHaveLength(2));
    expect(sink.events[1]).toMatchObject({
      full: false,
      cluster: { name: 'eu', id: 1, nodes: ['eu-1', 'eu-2'] },
      upserts: [],
      deletes: [],
    });
    expect(source?.lastError).toBe('');
  });

  it('starts invalid, keeps watching, and publishes everything once fixed', async () => {
    await writeFile(join(dir.path, 'a.yaml'), podYaml('ghost', 'a'));
    const started = await startSource().start();
    expect(started).toMatchObject({ status: 'invalid', cluster: 'eu' });
    if (started.status !== 'invalid') return;
    expect(started.errors).toMatchObject([{ object: 'Pod/ghost/a', field: 'metadata.namespace' }]);
    // Health goes out under the name cluster.yaml gives.
    expect(sink.health[0]).toMatchObject({
      cluster: 'eu',
      lastError: expect.stringContaining('Pod/ghost/a'),
    });
    await writeFile(join(dir.path, 'a.yaml'), podYaml('n', 'a'));
    await eventually(() => expect(sink.events).toHaveLength(1));
    expect(sink.events[0]).toMatchObject({ full: true });
    expect(sink.health.at(-1)?.lastError).toBe('');
  });

  it('stops without deleting anything', async () => {
    await startSource().start();
    await source?.stop();
    await writeFile(join(dir.path, 'b.yaml'), podYaml('n', 'b'));
    await quietPeriod(200);
    expect(sink.events).toHaveLength(1);
    expect(sink.events.every((e) => e.deletes.length === 0)).toBe(true);
  });
});
