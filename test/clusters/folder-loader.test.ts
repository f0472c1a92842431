// ClusterFolderLoader re-parses only changed files; whatever the sequence of
// edits, each load must equal a fresh loadClusterFolder of the same folder
// with the same previous placements: objects, origins, errors and warnings,
// in order, with their file/document/object/field.
import fc from 'fast-check';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterState, PreviousPlacements } from '../../clusters/src/index.js';
import {
  ClusterFolderLoader,
  clusterState,
  diffChangeSet,
  loadClusterFolder,
  patchClusterState,
  podPlacements,
} from '../../clusters/src/index.js';
import { clusterYaml, namespaceYaml, podYaml, writeTree } from './fixtures.js';

const roots: string[] = [];
afterEach(async () => {
  await Promise.all(roots.splice(0).map((r) => rm(r, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'meshplane-folder-loader-'));
  roots.push(root);
  return root;
}

// Small pools, so edits collide: duplicate names across files, clashing and
// kept addresses, namespaces that come and go.
const NAMESPACES = ['a', 'b', 'gone'];
const POD_NAMES = ['p0', 'p1', 'p2', 'p3'];
const IPS = ['10.1.0.1', '10.1.0.2', '10.1.0.7', '10.9.0.1', 'not-an-ip'];
const NODES = ['c-1', 'c-2', 'c-3', 'elsewhere'];

const podDocument = fc
  .record({
    namespace: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom(...POD_NAMES),
    node: fc.option(fc.constantFrom(...NODES), { nil: undefined }),
    ip: fc.option(fc.constantFrom(...IPS), { nil: undefined }),
    serviceAccount: fc.option(fc.constantFrom('sa', 'missing'), { nil: undefined }),
  })
  .map(({ namespace, name, node, ip, serviceAccount }) =>
    podYaml(namespace, name, {
      spec:
        (node === undefined ? '' : `  nodeName: ${node}\n`) +
        (serviceAccount === undefined ? '' : `  serviceAccountName: ${serviceAccount}\n`) +
        '  containers: [{ name: app }]\n',
      ...(ip === undefined ? {} : { status: `  podIP: ${ip}\n` }),
    }),
  );

const document = fc.oneof(
  { arbitrary: podDocument, weight: 6 },
  { arbitrary: fc.constantFrom(...NAMESPACES).map(namespaceYaml), weight: 2 },
  {
    arbitrary: fc
      .constantFrom(...NAMESPACES)
      .map(
        (ns) => `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: ${ns}\n`,
      ),
    weight: 1,
  },
  { arbitrary: fc.constant('kind: Pod\nmetadata: [unclosed\n'), weight: 1 },
  { arbitrary: fc.constant('apiVersion: v1\nkind: Gadget\nmetadata:\n  name: g\n'), weight: 1 },
  {
    arbitrary: podDocument.map(
      (pod) =>
        `apiVersion: v1\nkind: List\nitems:\n${pod.replace(/^/gm, '  ').replace(/^ {2}/, '- ')}`,
    ),
    weight: 1,
  },
);

const FILES = ['a.yaml', 'b.yaml', 'z.yml', 'sub/c.yaml', 'sub/d.json'];

type Edit =
  | { op: 'write'; path: string; text: string }
  | { op: 'delete'; path: string }
  | { op: 'touch'; path: string }
  | { op: 'cluster'; text: string };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      path: fc.constantFrom(...FILES),
      text: fc.array(document, { minLength: 0, maxLength: 4 }).map((d) => d.join('---\n')),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom(...FILES) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ op: fc.constant('touch' as const), path: fc.constantFrom(...FILES) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant('cluster' as const),
      text: fc.constantFrom(
        clusterYaml('c', 1, ['c-1', 'c-2', 'c-3']),
        clusterYaml('c', 1, ['c-1', 'c-2']),
        clusterYaml('c', 1, ['c-1', 'c-2', 'c-3'], 'podCIDR: 10.1.0.0/30\n'),
        'name: c\nid: [1]\n',
      ),
    }),
    weight: 1,
  },
);

async function apply(dir: string, files: Map<string, string>, e: Edit): Promise<void> {
  if (e.op === 'cluster') {
    await writeFile(join(dir, 'cluster.yaml'), e.text);
  } else if (e.op === 'delete') {
    files.delete(e.path);
    await unlink(join(dir, e.path)).catch(() => undefined);
  } else {
    const text = e.op === 'write' ? e.text : files.get(e.path);
    if (text === undefined) return;
    files.set(e.path, text);
    await writeTree(dir, { [e.path]: text });
  }
}

// Folders that stay clean (every pod written with its node and address, in
// declared namespaces), so most saves are patched rather than reassembled —
// with the occasional clash, stray namespace or other kind to leave that path.
const cleanPod = fc
  .record({
    namespace: fc.constantFrom('a', 'a', 'a', 'default'),
    name: fc.constantFrom(...POD_NAMES, 'p4', 'p5', 'p6', 'p7'),
    node: fc.constantFrom('c-1', 'c-2', 'c-3'),
    ip: fc.integer({ min: 1, max: 12 }).map((n) => (n === 12 ? '10.9.0.1' : `10.1.0.${n}`)),
    serviceAccount: fc.constantFrom('default', 'sa', 'sa', 'missing'),
  })
  .map(({ namespace, name, node, ip, serviceAccount }) =>
    podYaml(namespace, name, {
      spec: `  nodeName: ${node}
  serviceAccountName: ${serviceAccount}
  containers: [{ name: app }]
`,
      status: `  podIP: ${ip}
`,
    }),
  );

const cleanEdit: fc.Arbitrary<Edit> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      path: fc.constantFrom(...FILES),
      text: fc
        .array(fc.oneof({ arbitrary: cleanPod, weight: 12 }, { arbitrary: document, weight: 1 }), {
          minLength: 0,
          maxLength: 3,
        })
        .map((d) => d.join('---\n')),
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom(...FILES) }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ op: fc.constant('touch' as const), path: fc.constantFrom(...FILES) }),
    weight: 1,
  },
);

/**
 * Runs the edits, loading after each: the loader's result must equal a fresh
 * load, and the state a source builds from what the loader says changed
 * (patchClusterState) must equal one built from every object. Returns how
 * many loads were patches.
 */
async function checkEdits(
  edits: readonly Edit[],
  nodesPerCluster: number | undefined,
  setup: Record<string, string>,
): Promise<number> {
  const dir = await tempDir();
  await writeTree(dir, { 'cluster.yaml': clusterYaml('c', 1, ['c-1', 'c-2', 'c-3']), ...setup });
  const loader = new ClusterFolderLoader(dir, { nodesPerCluster });
  const files = new Map<string, string>();
  let previousPlacements: PreviousPlacements | undefined;
  let state: { load: number; value: ClusterState } | undefined;
  let patched = 0;
  for (const e of [{ op: 'touch', path: 'ns.yaml' } as const, ...edits]) {
    await apply(dir, files, e);
    const incremental = await loader.load({ previousPlacements });
    const fresh = await loadClusterFolder(dir, { nodesPerCluster, previousPlacements });
    expect(incremental).toStrictEqual(fresh);
    // As the source does: placements and state move on with good loads only.
    if (!incremental.ok) continue;
    previousPlacements = podPlacements(incremental.value.objects);
    const { spec, objects } = incremental.value;
    const load = loader.lastLoad!;
    if (load.changes !== undefined && load.changes.since === state?.load) {
      patched += 1;
      const { upserted, removed } = load.changes;
      state = { load: load.id, value: patchClusterState(state.value, spec, upserted, removed) };
    } else {
      state = { load: load.id, value: clusterState(spec, objects, state?.value) };
    }
    const whole = clusterState(spec, objects);
    expect(new Map([...state.value.objects].map(([k, v]) => [k, v.text]))).toEqual(
      new Map([...whole.objects].map(([k, v]) => [k, v.text])),
    );
    expect(diffChangeSet(whole, state.value, 'test')).toBeUndefined();
  }
  return patched;
}

describe('ClusterFolderLoader', () => {
  it('equals a fresh loadClusterFolder after any sequence of edits (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(edit, { minLength: 1, maxLength: 12 }),
        fc.constantFrom(undefined, 2),
        async (edits, nodesPerCluster) => {
          await checkEdits(edits, nodesPerCluster, { 'ns.yaml': namespaceYaml('a') });
        },
      ),
      { numRuns: 100 },
    );
  }, 120_000);

  it('patches clean folders save by save with the same outcome as a fresh load (property)', async () => {
    let patched = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cleanEdit, { minLength: 1, maxLength: 12 }), async (edits) => {
        patched += await checkEdits(edits, undefined, {
          'ns.yaml': `${namespaceYaml('a')}---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  namespace: a\n`,
        });
      }),
      { numRuns: 100 },
    );
    // The property is only worth something if the patch path ran.
    expect(patched).toBeGreaterThan(100);
  }, 120_000);

  it('parses only changed files and keeps unchanged objects identical, so diffs skip them', async () => {
    const dir = await tempDir();
    await writeTree(dir, {
      'cluster.yaml': clusterYaml('c', 1, ['c-1', 'c-2']),
      'ns.yaml': namespaceYaml('a'),
      'one.yaml': [podYaml('a', 'p1'), podYaml('a', 'p2')].join('---\n'),
      'two.yaml': podYaml('a', 'q1', { spec: '  nodeName: c-2\n', status: '  podIP: 10.1.0.9\n' }),
    });
    const loader = new ClusterFolderLoader(dir);
    const first = await loader.load();
    if (!first.ok) throw new Error(JSON.stringify(first.errors));
    const before = clusterState(first.value.spec, first.value.objects);

    await writeTree(dir, { 'two.yaml': podYaml('a', 'q1', { spec: '  nodeName: c-1\n' }) });
    const second = await loader.load({ previousPlacements: podPlacements(first.value.objects) });
    if (!second.ok) throw new Error(JSON.stringify(second.errors));
    expect(loader.reusedFiles).toBe(2);
    const byName = (objects: typeof first.value.objects, name: string) =>
      objects.find((o) => o.name === name);
    // Placed pods of the unchanged file are the very same objects.
    expect(byName(second.value.objects, 'p1')).toBe(byName(first.value.objects, 'p1'));
    expect(byName(second.value.objects, 'p2')).toBe(byName(first.value.objects, 'p2'));
    expect(byName(second.value.objects, 'q1')).not.toBe(byName(first.value.objects, 'q1'));

    const after = clusterState(second.value.spec, second.value.objects, before);
    expect(after.objects.get('Pod/a/p1')).toBe(before.objects.get('Pod/a/p1'));
    const delta = diffChangeSet(before, after, 'test');
    expect(delta?.upserts.map((o) => o.name)).toEqual(['q1']);
    expect(delta?.deletes).toEqual([]);
  });

  it('reads a file again when rewritten in place with the same size, even after trusting its stamp', async () => {
    const dir = await tempDir();
    const pod = (ip: string) =>
      podYaml('a', 'p1', { spec: '  nodeName: c-1\n', status: `  podIP: ${ip}\n` });
    await writeTree(dir, {
      'cluster.yaml': clusterYaml('c', 1, ['c-1']),
      'ns.yaml': namespaceYaml('a'),
      'pod.yaml': pod('10.1.0.1'),
    });
    // Old enough for their stamps to be trusted (read-files.ts RACY_MS).
    await new Promise((resolve) => setTimeout(resolve, 2_200));
    const loader = new ClusterFolderLoader(dir);
    expect((await loader.load()).ok).toBe(true);
    expect((await loader.load()).ok).toBe(true);
    expect(loader.reusedFiles).toBe(2);
    await writeTree(dir, { 'pod.yaml': pod('10.1.0.2') });
    const result = await loader.load();
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.value.objects.find((o) => o.name === 'p1')).toMatchObject({ ips: ['10.1.0.2'] });
    expect(loader.lastLoad?.changes?.upserted.map((o) => o.name)).toEqual(['p1']);
  });

  it('re-parses every file when the cluster spec changes', async () => {
    const dir = await tempDir();
    await writeTree(dir, {
      'cluster.yaml': clusterYaml('c', 1, ['c-1', 'c-2']),
      'one.yaml': podYaml('default', 'p1', { spec: '  nodeName: c-2\n' }),
    });
    const loader = new ClusterFolderLoader(dir);
    expect((await loader.load()).ok).toBe(true);
    await writeTree(dir, { 'cluster.yaml': clusterYaml('c', 1, ['c-1']) });
    const result = await loader.load();
    expect(loader.reusedFiles).toBe(0);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      expect.objectContaining({
        file: join(dir, 'one.yaml'),
        document: 0,
        object: 'Pod/default/p1',
        field: 'spec.nodeName',
      }),
    ]);
  });
});
