// Writing a change set into a cluster folder (what a source does for
// `meshctl apply` / `delete`), on real files: all or nothing, errors where
// the user wrote them, untouched documents byte for byte as they were.
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyToFolder, editDocuments } from '../../clusters/src/index.js';
import type { ChangeSetFile, SourceApplyRequest } from '../../common/index.js';
import { tempDir, type TempDir } from '../harness/index.js';

const NAMESPACES = `# the namespaces of this cluster
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: ops   # keep this comment
`;

const policy = (name: string, app: string, port = '8443'): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ${name}
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: ${app}
  ingress:
    - toPorts:
        - ports:
            - port: "${port}"
`;

const request = (
  files: ChangeSetFile[],
  mode: 'apply' | 'delete' = 'apply',
  dryRun = false,
): SourceApplyRequest => ({ apiVersion: 'meshplane/v1', id: 'cs', mode, dryRun, files });

describe('editDocuments', () => {
  const text = 'a: 1\n---\n# about b\nb: 2\n---\nc: 3';
  it('replaces one document and keeps every other byte', () => {
    expect(
      editDocuments(text, { replace: new Map([[1, 'b: 20\n']]), remove: new Set(), append: [] }),
    ).toBe('a: 1\n---\nb: 20\n---\nc: 3');
  });
  it('removes documents, and the whole file once nothing is left', () => {
    expect(editDocuments(text, { replace: new Map(), remove: new Set([0]), append: [] })).toBe(
      '---\n# about b\nb: 2\n---\nc: 3',
    );
    expect(
      editDocuments(text, { replace: new Map(), remove: new Set([0, 1, 2]), append: [] }),
    ).toBeUndefined();
  });
  it('appends documents, to a new file without a leading marker', () => {
    expect(editDocuments(text, { replace: new Map(), remove: new Set(), append: ['d: 4\n'] })).toBe(
      'a: 1\n---\n# about b\nb: 2\n---\nc: 3\n---\nd: 4\n',
    );
    expect(
      editDocuments(undefined, { replace: new Map(), remove: new Set(), append: ['d: 4\n'] }),
    ).toBe('d: 4\n');
  });
});

describe('applyToFolder', () => {
  let dir: TempDir;
  let folder: string;
  const snapshot = async (): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    const walk = async (d: string, rel: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
        else out[`${rel}${e.name}`] = await readFile(join(d, e.name), 'utf8');
      }
    };
    await walk(folder, '');
    return out;
  };

  beforeEach(async () => {
    dir = await tempDir('apply-folder-');
    folder = join(dir.path, 'eu');
    await mkdir(join(folder, 'shop'), { recursive: true });
    await writeFile(join(folder, 'cluster.yaml'), 'name: eu\nid: 1\nnodes: [eu-1]\n');
    await writeFile(join(folder, 'namespaces.yaml'), NAMESPACES);
    await writeFile(
      join(folder, 'shop', 'policies.yaml'),
      `${policy('first', 'a')}---\n${policy('second', 'b')}`,
    );
  });
  afterEach(() => dir.cleanup());

  it('replaces an object in its own document, creates new ones in files of their own', async () => {
    const r = await applyToFolder(
      folder,
      request([
        {
          path: 'change.yaml',
          text: `${policy('second', 'b', '9000')}---\n${policy('third', 'c')}`,
        },
      ]),
    );
    expect(r).toEqual({
      ok: true,
      unchanged: false,
      objects: [
        { key: 'CiliumNetworkPolicy/shop/second', action: 'configured' },
        { key: 'CiliumNetworkPolicy/shop/third', action: 'created' },
      ],
    });
    const files = await snapshot();
    expect(files['shop/policies.yaml']).toBe(
      `${policy('first', 'a')}---\n${policy('second', 'b', '9000')}`,
    );
    expect(files['shop/ciliumnetworkpolicy-third.yaml']).toBe(policy('third', 'c'));
    expect(files['namespaces.yaml']).toBe(NAMESPACES);
    expect(Object.keys(files).some((f) => f.includes('.tmp'))).toBe(false);
  });

  it('writes nothing when the change set is already in the folder', async () => {
    const before = await snapshot();
    const r = await applyToFolder(
      folder,
      request([{ path: 'x.yaml', text: `# same\n${policy('first', 'a')}` }]),
    );
    expect(r).toMatchObject({ ok: true, unchanged: true });
    expect(await snapshot()).toEqual(before);
  });

  it('reports every error where the user wrote it, and writes nothing', async () => {
    const before = await snapshot();
    const text = `${policy('bad-port', 'a', '70000')}---\n${policy('fine', 'a').replace('namespace: shop', 'namespace: nowhere')}`;
    const r = await applyToFolder(folder, request([{ path: 'mine/change.yaml', text }]));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => [e.file, e.document, e.object, e.field])).toEqual([
      [
        'mine/change.yaml',
        0,
        'CiliumNetworkPolicy/shop/bad-port',
        'spec.ingress[0].toPorts[0].ports[0].port',
      ],
      ['mine/change.yaml', 1, 'CiliumNetworkPolicy/nowhere/fine', 'metadata.namespace'],
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('validates without writing in a dry run', async () => {
    const before = await snapshot();
    const r = await applyToFolder(
      folder,
      request([{ path: 'n.yaml', text: policy('new', 'n') }], 'apply', true),
    );
    expect(r).toMatchObject({ ok: true, objects: [{ action: 'created' }] });
    expect(await snapshot()).toEqual(before);
  });

  it('deletes documents, and a file once it is empty', async () => {
    const r = await applyToFolder(
      folder,
      request(
        [{ path: 'd.yaml', text: `${policy('first', 'a')}---\n${policy('second', 'b')}` }],
        'delete',
      ),
    );
    expect(r).toMatchObject({ ok: true, unchanged: false });
    expect(Object.keys(await snapshot()).sort()).toEqual(['cluster.yaml', 'namespaces.yaml']);
  });

  it('refuses to delete a namespace its objects still use, naming them', async () => {
    const r = await applyToFolder(
      folder,
      request(
        [{ path: 'ns.yaml', text: 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n' }],
        'delete',
      ),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => e.object)).toContain('CiliumNetworkPolicy/shop/first');
    expect((await snapshot())['namespaces.yaml']).toBe(NAMESPACES);
  });

  it('refuses to edit an object that lives inside a List', async () => {
    await writeFile(
      join(folder, 'shop', 'list.yaml'),
      `apiVersion: v1\nkind: List\nitems:\n  - ${policy('listed', 'l').trimEnd().replaceAll('\n', '\n    ')}\n`,
    );
    const r = await applyToFolder(
      folder,
      request([{ path: 'l.yaml', text: policy('listed', 'x') }]),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors[0]?.message).toMatch(/as items\[0\] of a List; edit that file/);
  });
});
