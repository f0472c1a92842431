import type { Command } from 'commander';
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadMeshFolder, type LoadedCluster } from '../../clusters/src/index.js';
import { formatIssue } from '../../common/index.js';
import { createTestbed, newRunId, podKey, testbedSpecOf, type Testbed } from '../../hosts/index.js';
import { REPO_ROOT, type Component } from '../child-process.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { LocalMesh, ebpfAgentArgs } from '../local-mesh.js';
import { tlsDirOf } from '../admin-tls.js';
import { stateDirOf, type MeshState } from '../state-dir.js';

interface UpOptions {
  clusters: string;
  nodes?: string;
  datapath: string;
  keep?: boolean;
  stateDir?: string;
  insecure?: boolean;
}

/**
 * `meshctl up`: the whole mesh on this machine, in the foreground — etcd,
 * NATS, the control plane, one source per cluster and one agent per node,
 * each its own process (cli/local-mesh.ts). With `--datapath ebpf` every
 * node and pod is also a network namespace (hosts/, as `meshctl lab` makes
 * them) and each agent programs the kernel for its node's namespace.
 * Ctrl-C stops every child and removes what it made (data and certificates
 * unless --keep; namespaces, pins and host processes always).
 */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description(
      'run a local mesh in the foreground: etcd, NATS, control plane, cluster sources, node agents',
    )
    .option(
      '--clusters <dir>',
      'mesh folder (subfolders with cluster.yaml, or one cluster)',
      'clusters/demo',
    )
    .option('--nodes <n>', "replace every cluster's node list with <cluster>-1..N")
    .option(
      '--datapath <kind>',
      'auto | ebpf (root: namespaces and kernel maps) | emulated',
      'auto',
    )
    .option('--keep', 'keep data dirs when stopping')
    .option('--state-dir <dir>', 'state dir (default .meshplane or $MESHPLANE_STATE_DIR)')
    .option('--insecure', 'plain-text gRPC, no certificates (local experiments only)')
    .action(async (opts: UpOptions) => {
      await up(opts);
    });
}

async function up(opts: UpOptions): Promise<void> {
  const datapath = chooseDatapath(opts.datapath);
  if (datapath.kind === 'ebpf') await checkEbpfPrerequisites();
  const nodes = opts.nodes === undefined ? undefined : Number(opts.nodes);
  const dir = resolve(opts.clusters);
  const loaded = await loadMeshFolder(dir, { nodesPerCluster: nodes });
  if (!loaded.ok) {
    throw new CliExit(
      EXIT.usage,
      `invalid mesh folder ${dir}:\n${loaded.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`,
    );
  }
  const clusters = loaded.value.clusters;
  const stateDir = stateDirOf(opts.stateDir);

  // The first Ctrl-C/SIGTERM aborts a start in progress or ends the wait below;
  // either way everything is stopped and removed before meshctl exits.
  const interrupt = new AbortController();
  const onSignal = (): void => {
    if (!interrupt.signal.aborted) process.stderr.write('\nmeshctl up: stopping...\n');
    interrupt.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interrupted = new Promise<void>((r) =>
    interrupt.signal.addEventListener('abort', () => r(), { once: true }),
  );
  let bed: Testbed | undefined;
  let mesh: LocalMesh | undefined;
  try {
    process.stderr.write(
      `meshctl up: datapath ${datapath.kind}${datapath.why ? ` (${datapath.why})` : ''}\n`,
    );
    if (datapath.kind === 'ebpf') {
      const spec = testbedSpecOf(newRunId(), clusters, []);
      process.stderr.write(
        `meshctl up: run ${spec.runId}: ${spec.nodes.length} node and ${spec.pods.length} pod namespaces\n`,
      );
      bed = await createTestbed(spec, { signal: interrupt.signal });
    }
    const testbed = bed;
    mesh = await LocalMesh.start({
      clusters,
      stateDir,
      datapath: datapath.kind,
      agentArgs: testbed === undefined ? () => ['--datapath', 'emulated'] : ebpfAgentArgs(testbed),
      ...(nodes ? { nodesPerCluster: nodes } : {}),
      insecure: opts.insecure ?? false,
      metrics: true,
      cleanup: opts.keep ? 'state' : 'runtime',
      ...(testbed ? { state: { testbed: testbedState(testbed) } } : {}),
      signal: interrupt.signal,
    });
    report(mesh, clusters, dir, opts, testbed);
    // A component that dies takes the mesh down loudly rather than leaving it half-running.
    const died = await Promise.race([mesh.firstExit(), interrupted.then(() => undefined)]);
    if (died !== undefined) {
      process.stderr.write(
        `meshctl up: ${died.name} exited (${String(died.code)}); stopping. See ${mesh.logs}\n`,
      );
      process.exitCode = EXIT.failed;
    }
  } catch (err) {
    // Interrupted while starting: not an error, everything is removed below.
    if (!interrupt.signal.aborted) throw err;
  } finally {
    await mesh?.stop();
    await bed?.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Stopped by the user: everything is gone; do not wait for idle client handles.
  if (interrupt.signal.aborted) process.exit(0);
}

type Datapath = { kind: 'emulated' | 'ebpf'; why?: string };

function chooseDatapath(flag: string): Datapath {
  switch (flag) {
    case 'emulated':
    case 'ebpf':
      return { kind: flag };
    case 'auto':
      // Never the kernel unasked: the eBPF datapath makes network namespaces for every node and pod.
      return {
        kind: 'emulated',
        why: 'auto: the emulated one; --datapath ebpf (root) programs the kernel with a network namespace per node and pod',
      };
    default:
      throw new CliExit(EXIT.usage, `--datapath must be auto, ebpf or emulated, got ${flag}`);
  }
}

async function checkEbpfPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new CliExit(
      EXIT.usage,
      'up --datapath ebpf needs root (CAP_NET_ADMIN to make network namespaces, CAP_BPF to load programs); run it as root or use --datapath emulated',
    );
  const object = join(REPO_ROOT, 'bpf/meshplane.bpf.o');
  try {
    await access(object);
  } catch {
    throw new CliExit(
      EXIT.usage,
      `up --datapath ebpf: ${object} is missing; build it with \`make -C bpf\` (or \`npm run setup\`)`,
    );
  }
}

function testbedState(bed: Testbed): NonNullable<MeshState['testbed']> {
  return {
    runId: bed.runId,
    pinDir: bed.pinDir,
    nodes: Object.fromEntries(bed.plan.nodes.map((n) => [`${n.cluster}/${n.name}`, n.netns])),
    pods: Object.fromEntries(
      bed.plan.pods.map((p) => [
        podKey(p),
        { netns: p.netns, ip: p.ip, nodeNetns: p.nodeNetns, hostIfname: p.hostIfname },
      ]),
    ),
  };
}

function report(
  mesh: LocalMesh,
  clusters: readonly LoadedCluster[],
  dir: string,
  opts: UpOptions,
  bed: Testbed | undefined,
): void {
  const cp = mesh.controlPlane!;
  const dashboard = typeof cp.ready.dashboard === 'string' ? cp.ready.dashboard : '';
  const summary = clusters
    .map((c) => `${c.spec.name} (${c.spec.nodes.length} nodes, ${c.objects.length} objects)`)
    .join(', ');
  const hosts = bed
    ? [
        `  test hosts: run ${bed.runId}; a namespace per node and pod (${bed.plan.prefix}*), each pod serving its container ports (TCP/UDP echo)`,
        `           e.g. ip netns exec ${bed.plan.pods[0]?.netns ?? `${bed.plan.prefix}…`} …   (every pod's namespace and address: testbed in mesh.json)`,
        `  pins:    ${bed.pinDir}/<node>`,
      ]
    : [];
  process.stderr.write(
    [
      `meshctl up: mesh running — clusters ${summary}`,
      `  control plane (gRPC discovery + admin): ${mesh.address}`,
      `  etcd: ${mesh.etcd}   NATS: ${mesh.nats}`,
      opts.insecure
        ? '  transport: PLAIN TEXT (--insecure): any local process can read every snapshot'
        : `  transport: mTLS; mesh CA and certificates in ${tlsDirOf(mesh.stateDir)}`,
      `  dashboard: ${dashboard || 'off'}   (live propagation and skew; loopback only, no login)`,
      `  status:  npm run meshctl -- status   (or: meshctl status --json)`,
      `  metrics: ${String(cp.ready.metrics)} (control plane: propagation, skew, NACKs)`,
      ...metricsLines(mesh.allAgents()),
      ...hosts,
      `  skew:    npm run meshctl -- skew [--watch]   wait: meshctl wait --revision R`,
      `  logs:    ${mesh.logs}`,
      `  edit manifests under ${dir} and the change goes out; Ctrl-C stops everything${opts.keep ? ' (data kept)' : ' and removes what was created'}`,
      '',
    ].join('\n'),
  );
  process.stdout.write(
    `${JSON.stringify({
      event: 'ready',
      apiVersion: 'meshplane/v1',
      controlPlane: mesh.address,
      metrics: cp.ready.metrics,
      dashboard,
      stateDir: mesh.stateDir,
      ...(bed ? { runId: bed.runId } : {}),
    })}\n`,
  );
}

/** Where each agent's metrics are: all of them for a small mesh, the first few and a count otherwise. */
function metricsLines(agents: readonly Component[]): string[] {
  const shown = agents.slice(0, 4).map((a) => `           ${a.name}: ${String(a.ready.metrics)}`);
  if (agents.length > shown.length)
    shown.push(
      `           … and ${agents.length - shown.length} more agents (their logs name their metrics URL)`,
    );
  return shown;
}
