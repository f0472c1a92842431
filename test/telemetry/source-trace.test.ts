// A cluster source publishes each `meshctl apply` with the caller's trace
// context; when it folds several applies that arrived together into one
// change set, the first caller's context is the change set's traceparent and
// the others travel as links (so the revision span links to every caller).
// A manifest folder on disk, the real source and publisher, and a sink that
// records what each message would carry in its NATS headers.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type SourceApplyRequest } from '../../common/index.js';
import { ManifestSource, type EventPart, type EventSink } from '../../clusters/src/index.js';
import { tempDir, waitFor, type TempDir } from '../harness/index.js';

interface Sent {
  subject: string;
  traceparent: string | undefined;
  links: readonly string[];
  part: EventPart | undefined;
  upserts: string[];
}

class RecordingSink implements EventSink {
  readonly sent: Sent[] = [];
  ensureStream(): Promise<void> {
    return Promise.resolve();
  }
  publishEvent(
    subject: string,
    payload: Uint8Array,
    _msgID: string,
    traceparent?: string,
    part?: EventPart,
    traceLinks?: readonly string[],
  ): Promise<number> {
    const event = JSON.parse(new TextDecoder().decode(payload)) as {
      upserts: { kind: string; name: string }[];
    };
    this.sent.push({
      subject,
      traceparent,
      links: traceLinks ?? [],
      part,
      upserts: event.upserts.map((o) => `${o.kind}/${o.name}`),
    });
    return Promise.resolve(this.sent.length);
  }
  publishHealth(): void {}
  maxPayload(): number {
    return 1024 * 1024;
  }
}

const tp = (n: number): string =>
  `00-${String(n).padStart(32, 'a')}-${String(n).padStart(16, 'b')}-01`;

const podFile = (name: string): SourceApplyRequest['files'][number] => ({
  path: `${name}.yaml`,
  text: `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: shop\n  labels:\n    app: ${name}\nspec:\n  containers: [{ name: app }]\n`,
});

const request = (id: string, name: string): SourceApplyRequest => ({
  apiVersion: 'meshplane/v1',
  id,
  mode: 'apply',
  dryRun: false,
  files: [podFile(name)],
});

describe('trace context of applies a cluster source publishes', () => {
  let dir: TempDir;
  let source: ManifestSource;
  const sink = new RecordingSink();

  beforeEach(async () => {
    dir = await tempDir('source-trace-');
    await mkdir(join(dir.path, 'shop'), { recursive: true });
    await writeFile(join(dir.path, 'cluster.yaml'), 'name: eu\nid: 1\nnodes: [eu-1]\n');
    await writeFile(
      join(dir.path, 'namespaces.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
    );
    source = new ManifestSource({ dir: dir.path, sink, logger: silentLogger() });
    expect(await source.start()).toMatchObject({ status: 'published' });
  });
  afterEach(async () => {
    await source?.stop();
    await dir?.cleanup();
  });

  it('a save gets a fresh context; applies folded into one change set carry the first as parent, the rest as links', async () => {
    // The folder's own change set: no caller, a fresh context, no links.
    const initial = sink.sent.at(-1)!;
    expect(initial.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(initial.links).toEqual([]);
    sink.sent.length = 0;

    // Three callers at once: the first is written and published on its own;
    // the other two arrive while it is being written and go out together.
    const replies = await Promise.all([
      source.apply(request('a', 'web-a'), tp(1)),
      source.apply(request('b', 'web-b'), tp(2)),
      source.apply(request('c', 'web-c'), tp(3)),
    ]);
    expect(replies.map((r) => r.ok)).toEqual([true, true, true]);
    await waitFor('every apply published', () =>
      ['a', 'b', 'c'].every((x) => sink.sent.some((s) => s.upserts.includes(`Pod/web-${x}`))),
    );
    // Each change set carries its first caller's context as traceparent, the
    // others' as links, in arrival order; at least two callers share one
    // (those arriving while the first is written are folded together).
    const callers = [
      { pod: 'Pod/web-a', tp: tp(1) },
      { pod: 'Pod/web-b', tp: tp(2) },
      { pod: 'Pod/web-c', tp: tp(3) },
    ];
    const messages = sink.sent.filter((s) => callers.some((c) => s.upserts.includes(c.pod)));
    for (const m of messages) {
      const carried = callers.filter((c) => m.upserts.includes(c.pod)).map((c) => c.tp);
      expect([m.traceparent, ...m.links]).toEqual(carried);
    }
    expect(Math.max(...messages.map((m) => m.links.length))).toBeGreaterThan(0);
    // Every caller is named exactly once.
    expect(messages.flatMap((m) => [m.traceparent, ...m.links]).sort()).toEqual(
      callers.map((c) => c.tp),
    );
  });
});
