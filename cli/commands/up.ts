import type { Command } from 'commander';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadMeshFolder, type LoadedCluster } from '../../clusters/src/index.js';
import { MeshError, formatIssue } from '../../common/index.js';
import { startInfra, type Infra } from '../../launcher/index.js';
import { joinCluster } from '../admin-client.js';
import { tlsDirOf } from '../admin-tls.js';
import { startComponent, type Component } from '../child-process.js';
import { removeMeshNatsCredentials, writeMeshNatsCredentials } from '../nats-credentials.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { removeMeshState, stateDirOf, writeMeshState } from '../state-dir.js';
import { meshTlsArgs, removeMeshTls, writeUpTls } from '../mesh-tls.js';

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
 * each its own process. Ctrl-C stops every child and removes what it made
 * (unless --keep).
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
    .option('--datapath <kind>', 'auto | ebpf | emulated', 'auto')
    .option('--keep', 'keep data dirs and logs when stopping')
    .option('--state-dir <dir>', 'state dir (default .meshplane or $MESHPLANE_STATE_DIR)')
    .option('--insecure', 'plain-text gRPC, no certificates (local experiments only)')
    .action(async (opts: UpOptions) => {
      await up(opts);
    });
}

async function up(opts: UpOptions): Promise<void> {
  const datapath = chooseDatapath(opts.datapath);
  const nodes = opts.nodes === undefined ? undefined : Number(opts.nodes);
  const dir = resolve(opts.clusters);
  const loaded = await loadMeshFolder(dir, { nodesPerCluster: nodes });
  if (!loaded.ok) {
    throw new CliExit(
      EXIT.usage,
      `invalid mesh folder ${dir}:\n${loaded.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`,
    );
  }
  const stateDir = stateDirOf(opts.stateDir);
  const logs = join(stateDir, 'logs');
  const dataDir = join(stateDir, 'data');
  const natsDir = join(stateDir, 'nats');
  const tlsDir = tlsDirOf(stateDir);
  // meshctl's own admin calls below must find this mesh's admin certificate.
  await mkdir(logs, { recursive: true });
  await mkdir(dataDir, { recursive: true });

  // Aborts a start in progress; once everything runs, stopping is orderly
  // (the servers must outlive the clients that drain into them).
  const starting = new AbortController();
  // Started in tiers; stopped in reverse: agents (they keep their state), then
  // sources, then the control plane, each tier in parallel; etcd and NATS last.
  const tiers: Component[][] = [];
  const components = (): Component[] => tiers.flat();
  let infra: Infra | undefined;
  let stopping: Promise<void> | undefined;
  let running = false;
  const stopAll = (): Promise<void> =>
    (stopping ??= (async () => {
      if (!running) starting.abort();
      for (const tier of [...tiers].reverse()) await Promise.all(tier.map((c) => c.stop()));
      await infra?.stop();
      await removeMeshState(stateDir);
      if (!opts.keep) {
        await rm(dataDir, { recursive: true, force: true });
        await removeMeshNatsCredentials(natsDir);
        await removeMeshTls(tlsDir);
      }
    })());
  const onSignal = (): void => {
    process.stderr.write('\nmeshctl up: stopping...\n');
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    process.stderr.write(
      `meshctl up: datapath ${datapath.kind}${datapath.why ? ` (${datapath.why})` : ''}\n`,
    );
    // One NATS user per process: each source may publish only its own
    // cluster's subjects, so a compromised or buggy source cannot speak for another.
    const nats = await writeMeshNatsCredentials(
      natsDir,
      loaded.value.clusters.map((c) => c.spec.name),
      { signal: starting.signal },
    );
    const agents = loaded.value.clusters.flatMap((c: LoadedCluster) =>
      c.spec.nodes.map((n) => ({ cluster: c.spec.name, node: n })),
    );
    // A mesh CA and one certificate per process; each gets only its own key's path.
    const tls = await writeUpTls(tlsDir, agents, {
      insecure: opts.insecure ?? false,
      signal: starting.signal,
    });
    infra = await startInfra({
      baseDir: dataDir,
      keepData: opts.keep ?? false,
      signal: starting.signal,
      natsAuthorization: nats.authorization,
    });
    const cp = await startComponent(
      'controlplane',
      'controlplane/main.ts',
      [
        '--etcd',
        infra.etcd.endpoint,
        '--nats',
        infra.nats.url,
        '--nats-creds',
        nats.controlPlaneFile,
        '--metrics-listen',
        '127.0.0.1:0',
        ...meshTlsArgs(tls === 'insecure' ? 'insecure' : tls.controlPlane),
      ],
      {
        logFile: join(logs, 'controlplane.log'),
        signal: starting.signal,
      },
    );
    tiers.push([cp]);
    const address = String(cp.ready.address);
    const dashboard = typeof cp.ready.dashboard === 'string' ? cp.ready.dashboard : '';
    // Membership is explicit: admit every cluster of the folder before its source starts.
    for (const c of loaded.value.clusters)
      await joinCluster({ address, stateDir }, c.spec.name, c.spec.id);
    const natsUrl = infra.nats.url;
    const sourceCreds = (cluster: string): string => {
      const file = nats.sourceFiles.get(cluster);
      if (file === undefined) throw new MeshError('INTERNAL', `no NATS credentials for ${cluster}`);
      return file;
    };
    tiers.push(
      await Promise.all(
        loaded.value.clusters.map((cluster) =>
          startComponent(
            `source-${cluster.spec.name}`,
            'clusters/src/main.ts',
            [
              '--dir',
              cluster.dir,
              '--nats',
              natsUrl,
              '--nats-creds',
              sourceCreds(cluster.spec.name),
              ...(nodes ? ['--nodes', String(nodes)] : []),
            ],
            { logFile: join(logs, `source-${cluster.spec.name}.log`), signal: starting.signal },
          ),
        ),
      ),
    );
    const started = await Promise.all(
      agents.map((a) =>
        startComponent(
          `agent-${a.cluster}-${a.node}`,
          'nodeagent/main.ts',
          [
            '--server',
            address,
            '--cluster',
            a.cluster,
            '--node',
            a.node,
            '--datapath',
            datapath.kind,
            '--metrics-listen',
            '127.0.0.1:0',
            ...meshTlsArgs(tls === 'insecure' ? 'insecure' : tls.agent(a.cluster, a.node)),
          ],
          { logFile: join(logs, `agent-${a.cluster}-${a.node}.log`), signal: starting.signal },
        ),
      ),
    );
    tiers.push(started);
    running = true;
    await writeMeshState(stateDir, {
      apiVersion: 'meshplane/v1',
      pid: process.pid,
      startedAt: new Date().toISOString(),
      controlPlane: address,
      etcd: infra.etcd.endpoint,
      nats: infra.nats.url,
      datapath: datapath.kind,
      clusters: loaded.value.clusters.map((c) => ({
        name: c.spec.name,
        id: c.spec.id,
        nodes: c.spec.nodes,
      })),
      logs,
      ...(dashboard ? { dashboard } : {}),
      tls: tls === 'insecure' ? 'insecure' : tls.admin,
      metrics: {
        controlPlane: String(cp.ready.metrics),
        agents: Object.fromEntries(
          started.map((c, i) => [
            `${agents[i]!.cluster}/${agents[i]!.node}`,
            String(c.ready.metrics),
          ]),
        ),
      },
    });
    const summary = loaded.value.clusters
      .map((c) => `${c.spec.name} (${c.spec.nodes.length} nodes, ${c.objects.length} objects)`)
      .join(', ');
    process.stderr.write(
      [
        `meshctl up: mesh running — clusters ${summary}`,
        `  control plane (gRPC discovery + admin): ${address}`,
        `  etcd: ${infra.etcd.endpoint}   NATS: ${infra.nats.url}`,
        tls === 'insecure'
          ? '  transport: PLAIN TEXT (--insecure): any local process can read every snapshot'
          : `  transport: mTLS; mesh CA and certificates in ${tlsDir}`,
        `  dashboard: ${dashboard || 'off'}   (live propagation and skew; loopback only, no login)`,
        `  status:  npm run meshctl -- status   (or: meshctl status --json)`,
        `  metrics: ${String(cp.ready.metrics)} (control plane: propagation, skew, NACKs)`,
        ...metricsLines(started),
        `  skew:    npm run meshctl -- skew [--watch]   wait: meshctl wait --revision R`,
        `  logs:    ${logs}`,
        `  edit manifests under ${dir} and the change goes out; Ctrl-C stops everything${opts.keep ? ' (data kept)' : ' and removes what was created'}`,
        '',
      ].join('\n'),
    );
    process.stdout.write(
      `${JSON.stringify({ event: 'ready', apiVersion: 'meshplane/v1', controlPlane: address, metrics: cp.ready.metrics, dashboard, stateDir })}\n`,
    );
    // A component that dies takes the mesh down loudly rather than leaving it half-running.
    const died = await Promise.race(
      components().map((c) => c.exited.then((code) => ({ c, code }))),
    );
    if (!stopping) {
      process.stderr.write(
        `meshctl up: ${died.c.name} exited (${String(died.code)}); stopping. See ${logs}\n`,
      );
      await stopAll();
      process.exitCode = EXIT.failed;
    }
  } catch (err) {
    await stopAll();
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function chooseDatapath(flag: string): { kind: 'emulated'; why?: string } {
  switch (flag) {
    case 'emulated':
      return { kind: 'emulated' };
    case 'auto':
      return {
        kind: 'emulated',
        why: 'auto: the eBPF datapath is not built yet, so the emulated one',
      };
    case 'ebpf':
      throw new CliExit(
        EXIT.usage,
        '--datapath ebpf: the eBPF datapath is not built yet; use --datapath emulated',
      );
    default:
      throw new CliExit(EXIT.usage, `--datapath must be auto, ebpf or emulated, got ${flag}`);
  }
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
