// Divergence on the real kernel: an agent process with the eBPF datapath
// ACKs a revision; then another process (bpftool, as an operator or an
// attacker would) writes an ipcache entry into its pinned maps. The agent's
// next full re-read (--verify-interval) reports the changed digest and the
// control plane shows the node diverged, with both digests.
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  defaultPinDir,
  encodeIpcacheKey,
  encodeIpcacheValue,
  layoutDir,
  removePins,
} from '../../nodeagent/datapath/ebpf/index.js';
import { MeshAdminClient, SkewRequest, type SkewResponse } from '../../proto/index.js';
import { requirePrivileged, useInfra, waitFor } from '../harness/index.js';
import { connect, publish, startProc, stopProc, type Proc } from './procs.js';

const run = promisify(execFile);
const hex = (b: Buffer): string[] => [...b].map((x) => x.toString(16).padStart(2, '0'));
const ONE_NODE = { name: 'eu', id: 1, nodes: ['eu-1'], podCIDR: '10.1.0.0/16' };

describe.skipIf(!requirePrivileged())('diverged: a pinned map written with bpftool', () => {
  const infra = useInfra();
  const runId = `tl${Date.now().toString(36).slice(-5)}`;
  const pinDir = defaultPinDir(runId, 'eu-1');
  let cp: Proc;
  let agent: Proc;
  let admin: MeshAdminClient;
  let nc: NatsConnection;
  const skew = (): Promise<SkewResponse> =>
    new Promise((resolve, reject) =>
      admin.skew(SkewRequest.create(), (e, r) => (e ? reject(e) : resolve(r))),
    );
  const eu1 = async () => (await skew()).clusters[0]?.nodes.find((n) => n.name === 'eu-1');

  beforeAll(async () => {
    cp = startProc('controlplane/main.ts', [
      '--etcd',
      infra.etcd.endpoint,
      '--nats',
      infra.nats.url,
      '--insecure',
    ]);
    const address = String((await cp.ready).address);
    admin = new MeshAdminClient(address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    nc = await connect({ servers: infra.nats.url });
    // No pods on the node: it holds the mesh-wide ipcache, nothing to attach to interfaces.
    await publish(
      nc,
      [{ kind: 'Namespace', cluster: 'eu', namespace: '', name: 'shop', labels: {} }],
      undefined,
      ONE_NODE,
    );
    agent = startProc('nodeagent/main.ts', [
      '--insecure',
      '--server',
      address,
      '--cluster',
      'eu',
      '--node',
      'eu-1',
      '--datapath',
      'ebpf',
      '--run-id',
      runId,
      '--verify-interval',
      '1s',
    ]);
    await agent.ready;
  }, 240_000);
  afterAll(async () => {
    await stopProc(agent);
    await stopProc(cp);
    admin?.close();
    await nc?.close();
    await removePins(pinDir).catch(() => undefined);
  });

  it('shows the node diverged with the digest it read back and the expected one', async () => {
    await waitFor('eu-1 in-sync', async () => (await eu1())?.state === 'in-sync', {
      timeoutMs: 60_000,
    });
    // Write into every copy of the ipcache (the programs read one of them).
    const dir = layoutDir(pinDir);
    const copies = (await readdir(dir)).filter((f) => /^ipcache_\d+$/.test(f));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      await run('bpftool', [
        'map',
        'update',
        'pinned',
        `${dir}/${copy}`,
        'key',
        'hex',
        ...hex(encodeIpcacheKey('198.18.7.7/32')),
        'value',
        'hex',
        ...hex(encodeIpcacheValue(2)),
      ]);
    }
    const node = await waitFor(
      'eu-1 diverged',
      async () => {
        const n = await eu1();
        return n?.state === 'diverged' && n;
      },
      { timeoutMs: 60_000 },
    );
    expect(node.error).toMatch(/^datapath digest [0-9a-f]{16} differs from expected [0-9a-f]{16}$/);
  }, 180_000);
});
