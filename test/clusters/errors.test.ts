import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatIssue, type Result, type ValidationIssue } from '../../common/index.js';
import { loadClusterFolder, loadMeshFolder } from '../../clusters/src/index.js';
import { tempDir, type TempDir } from '../harness/index.js';
import { clusterYaml, located, namespaceYaml, podYaml, writeTree } from './fixtures.js';

let dir: TempDir;
beforeEach(async () => {
  dir = await tempDir('clusters-errors-');
});
afterEach(async () => {
  await dir.cleanup();
});

async function errorsOf(load: Promise<Result<unknown>>): Promise<ValidationIssue[]> {
  const result = await load;
  if (result.ok) throw new Error('expected the folder to be refused');
  return result.errors;
}

describe('malformed manifests', () => {
  it('reports every error of every file at once, naming file, document, object and field', async () => {
    await writeTree(dir.path, {
      'cluster.yaml': clusterYaml('c', 3, ['c-1']),
      'a-namespaces.yaml': `${namespaceYaml('shop')}---\nkind: [unclosed\n`,
      'b-pods.yaml': [
        podYaml('shop', 'ok'),
        podYaml('shop', 'web', {
          spec: '  containers:\n    - name: w\n      ports: [{ containerPort: 80 }, { containerPort: "abc" }]\n',
        }),
      ].join('---\n'),
      'c-deploy.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web, namespace: shop }\n',
    });
    const errors = await errorsOf(loadClusterFolder(dir.path));
    expect(errors.map(located)).toEqual([
      {
        file: join(dir.path, 'a-namespaces.yaml'),
        document: 1,
        object: undefined,
        field: undefined,
      },
      {
        file: join(dir.path, 'b-pods.yaml'),
        document: 1,
        object: 'Pod/shop/web',
        field: 'spec.containers[0].ports[1].containerPort',
      },
      { file: join(dir.path, 'c-deploy.yaml'), document: 0, object: 'Deployment', field: 'kind' },
    ]);
    expect(errors[0]?.message).toMatch(/^YAML syntax error at line \d+, column \d+: Flow sequence/);
    expect(errors[1]?.message).toBe('must be an integer 1..65535, got string "abc"');
    expect(errors[2]?.message).toMatch(/^unsupported kind "Deployment"; supported: Namespace, Pod/);
    expect(formatIssue(errors[1]!)).toBe(
      `${join(dir.path, 'b-pods.yaml')}: document 1: Pod/shop/web: spec.containers[0].ports[1].containerPort: must be an integer 1..65535, got string "abc"`,
    );
  });

  it('checks names, references and duplicates across documents', async () => {
    await writeTree(dir.path, {
      'cluster.yaml': clusterYaml('c', 3, ['c-1']),
      'x.yaml': [
        namespaceYaml('shop'),
        podYaml('shop', 'p', { spec: '  nodeName: c-9\n', labels: { 'bad key!': 'v' } }),
        podYaml('shop', 'p'),
        podYaml('missing', 'q'),
        'apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: { name: r, namespace: shop }\nspec: []\n',
        'apiVersion: v1\nkind: Service\nmetadata: { name: 9web, namespace: shop }\nspec: { ports: [{ port: 80, targetPort: "8080" }] }\n',
      ].join('---\n'),
    });
    const errors = await errorsOf(loadClusterFolder(dir.path));
    expect(errors.map((e) => `${e.document} ${e.object} ${e.field}`)).toEqual([
      '1 Pod/shop/p metadata.labels["bad key!"]',
      '1 Pod/shop/p spec.nodeName',
      '2 Pod/shop/p metadata.name',
      '4 CiliumNetworkPolicy/shop/r apiVersion',
      '4 CiliumNetworkPolicy/shop/r spec',
      '5 Service/shop/9web metadata.name',
      '5 Service/shop/9web spec.ports[0].targetPort',
      '3 Pod/missing/q metadata.namespace',
    ]);
    expect(errors[1]?.message).toBe('node "c-9" is not a node of cluster c (c-1)');
    expect(errors[2]?.message).toBe(
      `duplicate object; first defined in ${join(dir.path, 'x.yaml')} document 1 (Pod/shop/p)`,
    );
  });

  it('validates cluster.yaml', async () => {
    await writeTree(dir.path, {
      'cluster.yaml': 'name: Bad_Name\nid: 256\nnodes: [a, a]\npodCIDR: 10.0.0.1/16\npodCidr: x\n',
    });
    const errors = await errorsOf(loadClusterFolder(dir.path));
    expect(errors.map((e) => [e.field, e.message])).toEqual([
      ['podCidr', 'unknown field; cluster.yaml has name, id, nodes, podCIDR'],
      ['name', expect.stringMatching(/^"Bad_Name" must be a DNS label/)],
      ['id', 'must be 1..255, got 256'],
      ['nodes[1]', 'duplicate node "a"'],
      ['podCIDR', '"10.0.0.1/16" has host bits set; did you mean 10.0.0.0/16?'],
    ]);
  });

  it('treats a folder without cluster.yaml as cluster `default`', async () => {
    await writeTree(dir.path, { 'p.yaml': podYaml('default', 'solo') });
    const result = await loadMeshFolder(dir.path);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.value.multiCluster).toBe(false);
    expect(result.value.clusters[0]?.spec).toEqual({
      name: 'default',
      id: 1,
      nodes: ['default-1'],
      podCIDR: '10.1.0.0/16',
    });
  });
});

describe('mesh folder checks', () => {
  it('refuses a pod IP used in two clusters, naming both pods', async () => {
    await writeTree(dir.path, {
      'eu/cluster.yaml': clusterYaml('eu', 1, ['eu-1']),
      'eu/a.yaml': `${namespaceYaml('n')}---\n${podYaml('n', 'a', { status: '  podIP: 10.1.0.7\n' })}`,
      'us/cluster.yaml': clusterYaml('us', 2, ['us-1']),
      'us/b.yaml': `${namespaceYaml('n')}---\n${podYaml('n', 'b', { status: '  podIPs: [{ ip: 10.1.0.7 }]\n' })}`,
      'README.md': 'not a cluster',
    });
    const errors = await errorsOf(loadMeshFolder(dir.path));
    expect(errors).toEqual([
      {
        file: join(dir.path, 'us/b.yaml'),
        document: 1,
        object: 'Pod/n/b',
        field: 'status.podIPs[0].ip',
        message: `pod IP 10.1.0.7 is also used by cluster eu: ${join(dir.path, 'eu/a.yaml')} document 1 (Pod/n/a)`,
        severity: 'error',
      },
    ]);
  });

  it('refuses clashing cluster names, ids and pod CIDRs', async () => {
    await writeTree(dir.path, {
      'a/cluster.yaml': clusterYaml('eu', 1, ['n1']),
      'b/cluster.yaml': clusterYaml('eu', 2, ['n1']),
      'c/cluster.yaml': clusterYaml('us', 1, ['n1'], 'podCIDR: 10.2.128.0/17\n'),
    });
    const errors = await errorsOf(loadMeshFolder(dir.path));
    expect(errors.map((e) => [e.file, e.field, e.message])).toEqual([
      [
        join(dir.path, 'b/cluster.yaml'),
        'name',
        `cluster name "eu" is already used (${join(dir.path, 'a/cluster.yaml')})`,
      ],
      [
        join(dir.path, 'c/cluster.yaml'),
        'id',
        `cluster id 1 is already used by cluster eu (${join(dir.path, 'a/cluster.yaml')})`,
      ],
      [
        join(dir.path, 'c/cluster.yaml'),
        'podCIDR',
        `podCIDR 10.2.128.0/17 overlaps 10.2.0.0/16 of cluster eu (${join(dir.path, 'b/cluster.yaml')})`,
      ],
    ]);
  });
});
