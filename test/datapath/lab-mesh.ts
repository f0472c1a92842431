/**
 * A whole mesh on test hosts for the datapath tests: manifest folders written
 * to a temp dir, one namespace per node and pod (hosts/), etcd, NATS, control
 * plane, sources and one eBPF agent per node namespace (cli LocalMesh).
 * Policies change by writing or removing files in a cluster's folder, as a
 * user would; `converged()` waits until every node holds the new revision.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { loadMeshFolder } from '../../clusters/src/index.js';
import { LocalMesh } from '../../cli/index.js';
import {
  createTestbed,
  newRunId,
  testbedSpecOf,
  type ServedPort,
  type Testbed,
} from '../../hosts/index.js';
import { tempDir, waitFor, type TempDir } from '../harness/index.js';

export interface LabMeshHandle {
  readonly bed: Testbed;
  readonly mesh: LocalMesh;
  /** writes (or replaces) `<cluster>/<file>` and waits until every node applied the change */
  writeManifest(cluster: string, file: string, yaml: string): Promise<void>;
  removeManifest(cluster: string, file: string): Promise<void>;
  /** waits for a revision newer than the last one seen, held by every node */
  converged(): Promise<number>;
  probe(from: string, to: string, port: number, protocol?: 'TCP' | 'UDP'): Promise<string>;
}

/**
 * Starts in beforeAll, removes everything in afterAll. `files`: cluster folder → file → YAML;
 * `agentArgs`: more arguments for every agent (e.g. --metrics-listen).
 */
export function useLabMesh(
  files: Record<string, Record<string, string>>,
  served: ServedPort[],
  opts: { agentArgs?: string[] } = {},
): LabMeshHandle {
  let dir: TempDir | undefined;
  let bed: Testbed | undefined;
  let mesh: LocalMesh | undefined;
  let pods = 0;
  let revision = 0;
  beforeAll(async () => {
    dir = await tempDir('labmesh-');
    const root = join(dir.path, 'mesh');
    for (const [cluster, entries] of Object.entries(files)) {
      await mkdir(join(root, cluster), { recursive: true });
      for (const [name, text] of Object.entries(entries))
        await writeFile(join(root, cluster, name), text);
    }
    const loaded = await loadMeshFolder(root);
    if (!loaded.ok) throw new Error(`fixture does not load: ${JSON.stringify(loaded.errors)}`);
    const runId = newRunId();
    const spec = testbedSpecOf(runId, loaded.value.clusters, served);
    pods = spec.pods.length;
    bed = await createTestbed(spec);
    const testbed = bed;
    mesh = await LocalMesh.start({
      clusters: loaded.value.clusters,
      stateDir: join(dir.path, 'state'),
      datapath: 'ebpf',
      agentArgs: (cluster, node) => [
        '--datapath',
        'ebpf',
        '--run-id',
        runId,
        '--netns',
        testbed.node(cluster, node).netns,
        ...(opts.agentArgs ?? []),
      ],
    });
    revision = await mesh.waitConverged(pods);
    for (const p of spec.pods) {
      const key = `${p.cluster}/${p.namespace}/${p.name}`;
      await waitFor(`programs attached for ${key}`, () => testbed.programsAttached(key));
    }
  }, 120_000);
  afterAll(async () => {
    await mesh?.stop();
    await bed?.destroy();
    await dir?.cleanup();
  }, 60_000);

  const handle: LabMeshHandle = {
    get bed() {
      return bed!;
    },
    get mesh() {
      return mesh!;
    },
    async converged() {
      const before = revision;
      const end = Date.now() + 60_000;
      for (;;) {
        revision = await mesh!.waitConverged(pods);
        if (revision > before) return revision;
        if (Date.now() > end) throw new Error(`no revision after ${before} within 60 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async writeManifest(cluster, file, yaml) {
      await writeFile(join(dir!.path, 'mesh', cluster, file), yaml);
      await handle.converged();
    },
    async removeManifest(cluster, file) {
      await rm(join(dir!.path, 'mesh', cluster, file));
      await handle.converged();
    },
    async probe(from, to, port, protocol = 'TCP') {
      return (await bed!.probe(from, to, port, protocol, 1500)).outcome;
    },
  };
  return handle;
}

/** A Pod manifest with one label `app` on a given node and IP. */
export function pod(name: string, ns: string, node: string, ip: string, app = name): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: ${ns}
  labels:
    app: ${app}
spec:
  nodeName: ${node}
  containers:
    - name: main
      image: example/${app}
status:
  podIP: ${ip}
`;
}

export function namespace(name: string): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${name}
`;
}

export function cluster(name: string, id: number, nodes: string[]): string {
  return `name: ${name}
id: ${id}
nodes: [${nodes.join(', ')}]
`;
}
