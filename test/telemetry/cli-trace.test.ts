// One trace from the operator's command to the kernel-facing apply: meshctl
// apply/delete/wait (the real commands, run in-process with their own tracer)
// send their span's W3C context in the gRPC metadata; the control plane's
// call span is its child and passes it to the cluster's source in the NATS
// request; the source publishes the change set with it; the revision span is
// the call span's child; the push carries it to the agent, whose apply span
// is in the same trace. Real etcd, NATS, gRPC, a manifest source on a folder,
// and an agent; an in-memory span exporter per process role.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { SpanKind } from '@opentelemetry/api';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildMeshctl } from '../../cli/index.js';
import { ManifestSource } from '../../clusters/src/index.js';
import { silentLogger } from '../../common/index.js';
import { ControlPlane } from '../../controlplane/index.js';
import { EmulatedDatapath, NodeAgent } from '../../nodeagent/index.js';
import { registerAgentTracing } from '../../nodeagent/telemetry/index.js';
import { MeshAdminClient } from '../../proto/index.js';
import { tempDir, useInfra, waitFor, type TempDir } from '../harness/index.js';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: ledger-ingress
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: ledger
  ingress:
    - fromEndpoints:
        - matchLabels:
            app: web
      toPorts:
        - ports:
            - port: "8443"
              protocol: TCP
`;

const pod = (name: string): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels:
    app: ${name}
spec:
  containers: [{ name: app }]
`;

function spanStore(): { provider: BasicTracerProvider; spans: InMemorySpanExporter } {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  return { provider, spans };
}

const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan): string => s.spanContext().spanId;

describe('meshctl → control plane → source → revision → agent: one trace', () => {
  const infra = useInfra();
  const cli = spanStore();
  const cpSide = spanStore();
  const agentSide = spanStore();
  let work: TempDir;
  let cp: ControlPlane;
  let nc: NatsConnection;
  let source: ManifestSource;
  /** cluster us: its source runs before us joins, so the join's resync makes the revision */
  let usSource: ManifestSource;
  let agent: NodeAgent;
  let usAgent: NodeAgent | undefined;
  let policyFile: string;

  /** Runs one meshctl command in-process, as main.ts does (own program, the test's tracer); returns its stdout. */
  async function meshctl(...args: string[]): Promise<string> {
    const program = buildMeshctl({ tracer: cli.provider.getTracer('meshctl') });
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    try {
      await program.parseAsync(
        [...args, '--server', cp.address, '--state-dir', join(work.path, 'state')],
        { from: 'user' },
      );
    } finally {
      write.mockRestore();
    }
    return out;
  }

  const cliSpan = (name: string): ReadableSpan => {
    const found = cli.spans.getFinishedSpans().filter((s) => s.name === name);
    expect(found, name).toHaveLength(1);
    return found[0]!;
  };

  /**
   * The control plane's and the agent's spans of the revision a command
   * caused, once the revision converged: all in the command span's trace.
   */
  async function traceOf(command: ReadableSpan, revision: number) {
    const traceId = command.spanContext().traceId;
    const inTrace = (s: ReadableSpan) => s.spanContext().traceId === traceId;
    const cpSpans = await waitFor(
      `the revision ${revision} spans in the trace of ${command.name}`,
      () => {
        const all = cpSide.spans.getFinishedSpans().filter(inTrace);
        const rev = all.find(
          (s) => s.name === 'meshplane.revision' && s.attributes['meshplane.revision'] === revision,
        );
        const push = all.find((s) => s.name === 'meshplane.node.apply');
        return rev && push && { all, rev, push };
      },
      {
        timeoutMs: 60_000,
        detail: () =>
          JSON.stringify(
            cpSide.spans.getFinishedSpans().map((s) => [s.name, s.spanContext().traceId]),
          ),
      },
    );
    const applied = await waitFor(
      `the agent's apply of revision ${revision} in the trace of ${command.name}`,
      () =>
        agentSide.spans
          .getFinishedSpans()
          .find(
            (s) =>
              s.name === 'meshplane.agent.apply' &&
              inTrace(s) &&
              s.attributes['meshplane.revision'] === revision,
          ),
      { timeoutMs: 60_000 },
    );
    return { ...cpSpans, applied };
  }

  beforeAll(async () => {
    work = await tempDir('cli-trace-');
    const dir = join(work.path, 'eu');
    await mkdir(join(dir, 'shop'), { recursive: true });
    await writeFile(join(dir, 'cluster.yaml'), 'name: eu\nid: 1\nnodes: [eu-1]\n');
    await writeFile(
      join(dir, 'namespaces.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
    );
    await writeFile(join(dir, 'shop', 'pods.yaml'), `${pod('ledger')}---\n${pod('web')}`);
    const us = join(work.path, 'us');
    await mkdir(join(us, 'shop'), { recursive: true });
    await writeFile(join(us, 'cluster.yaml'), 'name: us\nid: 2\nnodes: [us-1]\n');
    await writeFile(
      join(us, 'namespaces.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
    );
    await writeFile(join(us, 'shop', 'pods.yaml'), pod('fraud'));
    policyFile = join(work.path, 'ledger-ingress.yaml');
    await writeFile(policyFile, POLICY);

    cp = new ControlPlane({
      etcdEndpoints: [infra.etcd.endpoint],
      natsUrl: infra.nats.url,
      listen: '127.0.0.1:0',
      log: silentLogger(),
      telemetry: { tracer: cpSide.provider.getTracer('meshplane') },
    });
    await cp.start();
    const admin = new MeshAdminClient(cp.address, grpc.credentials.createInsecure());
    await new Promise((resolve, reject) =>
      admin.joinCluster({ name: 'eu', id: 1 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    admin.close();
    nc = await connect({ servers: infra.nats.url });
    source = new ManifestSource({ dir, nc, logger: silentLogger() });
    expect(await source.start()).toMatchObject({ status: 'published', cluster: 'eu' });
    usSource = new ManifestSource({ dir: us, nc, logger: silentLogger() });
    expect(await usSource.start()).toMatchObject({ status: 'published', cluster: 'us' });
    agent = new NodeAgent({
      server: cp.address,
      node: { id: 'eu-1', cluster: 'eu' },
      datapath: new EmulatedDatapath(),
    });
    registerAgentTracing(agentSide.provider.getTracer('meshplane'), agent, {
      cluster: 'eu',
      node: 'eu-1',
    });
    agent.start();
    await waitFor('the folder applied on eu-1', () => agent.status().appliedRevision > 0, {
      timeoutMs: 60_000,
    });
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    await usAgent?.stop();
    await source?.stop();
    await usSource?.stop();
    await nc?.close();
    await cp?.stop();
    await work?.cleanup();
  });

  it('meshctl apply: the revision and the agent apply are in the command span trace', async () => {
    const out = JSON.parse(await meshctl('apply', '-f', policyFile, '--json')) as {
      revision: number;
      traceId: string;
    };
    expect(out.revision).toBeGreaterThan(0);
    const command = cliSpan('meshctl apply');
    expect(command.kind).toBe(SpanKind.CLIENT);
    expect(out.traceId).toBe(command.spanContext().traceId);
    expect(command.attributes['meshplane.revision']).toBe(out.revision);

    const { all, rev, push, applied } = await traceOf(command, out.revision);
    // The control plane's call span is the command span's child ...
    const call = all.find((s) => s.name === 'meshplane.changeset.apply')!;
    expect(call.kind).toBe(SpanKind.SERVER);
    expect(parentOf(call)).toBe(idOf(command));
    expect(call.attributes['meshplane.revision']).toBe(out.revision);
    // ... and the revision (its change set carried the call's context) is the call span's child.
    expect(parentOf(rev)).toBe(idOf(call));
    expect(rev.links.map((l) => l.context.spanId)).toEqual([idOf(call)]);
    // The push to eu-1 covers the revision; the agent's apply is the push's child.
    expect(push.links.map((l) => l.context.spanId)).toContain(idOf(rev));
    expect(parentOf(applied)).toBe(idOf(push));
    expect(applied.attributes['meshplane.node']).toBe('eu-1');

    // meshctl wait: its call span is the wait command's child, and says it was synced.
    const waited = JSON.parse(
      await meshctl('wait', '--revision', String(out.revision), '--json'),
    ) as { synced: boolean };
    expect(waited.synced).toBe(true);
    const waitCommand = cliSpan('meshctl wait');
    const waitCall = cpSide.spans
      .getFinishedSpans()
      .find((s) => s.name === 'meshplane.wait' && parentOf(s) === idOf(waitCommand));
    expect(waitCall?.spanContext().traceId).toBe(waitCommand.spanContext().traceId);
    expect(waitCall?.attributes).toMatchObject({
      'meshplane.revision': out.revision,
      'meshplane.synced': true,
    });
  }, 180_000);

  it('meshctl delete: a new trace, from the delete command to the agent', async () => {
    const out = JSON.parse(await meshctl('delete', '-f', policyFile, '--json')) as {
      revision: number;
      traceId: string;
    };
    const command = cliSpan('meshctl delete');
    expect(out.traceId).toBe(command.spanContext().traceId);
    expect(out.traceId).not.toBe(cliSpan('meshctl apply').spanContext().traceId);
    const { all, rev, applied } = await traceOf(command, out.revision);
    const call = all.find((s) => s.name === 'meshplane.changeset.delete')!;
    expect(parentOf(call)).toBe(idOf(command));
    expect(parentOf(rev)).toBe(idOf(call));
    expect(applied.attributes['meshplane.revision']).toBe(out.revision);
  }, 180_000);

  it('meshctl clusters join: the call span is the command span child; the joined cluster revision and the agent apply are in its trace', async () => {
    // us-1's agent, so the revision converges everywhere and its span ends.
    usAgent = new NodeAgent({
      server: cp.address,
      node: { id: 'us-1', cluster: 'us' },
      datapath: new EmulatedDatapath(),
    });
    usAgent.start();
    await meshctl('clusters', 'join', '--name', 'us', '--id', '2', '--json');
    const command = cliSpan('meshctl clusters join');
    const call = cpSide.spans
      .getFinishedSpans()
      .find((s) => s.name === 'meshplane.cluster.join' && parentOf(s) === idOf(command));
    expect(call?.spanContext().traceId).toBe(command.spanContext().traceId);
    expect(call?.attributes).toMatchObject({ 'meshplane.cluster': 'us' });
    // The control plane asks us's source to republish (NATS header: the call's
    // context); its full change set makes a revision eu-1 applies (us's pods
    // enter its ipcache), in the join's trace.
    const traceId = command.spanContext().traceId;
    const rev = await waitFor(
      "the revision of us's resync in the join's trace",
      () =>
        cpSide.spans
          .getFinishedSpans()
          .find((s) => s.name === 'meshplane.revision' && s.spanContext().traceId === traceId),
      { timeoutMs: 60_000 },
    );
    expect(parentOf(rev)).toBe(idOf(call!));
    const revision = rev.attributes['meshplane.revision'];
    const applied = await waitFor(
      "eu-1's apply in the join's trace",
      () =>
        agentSide.spans
          .getFinishedSpans()
          .find(
            (s) =>
              s.name === 'meshplane.agent.apply' &&
              s.spanContext().traceId === traceId &&
              s.attributes['meshplane.revision'] === revision,
          ),
      { timeoutMs: 60_000 },
    );
    expect(applied.attributes['meshplane.node']).toBe('eu-1');
  }, 180_000);
});
