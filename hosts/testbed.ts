import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { MeshError } from '../common/index.js';
import { guardCleanup } from '../launcher/index.js';
import { run, runQuietlySync } from './command.js';
import { HostProcess, type Outcome } from './host-process.js';
import { buildMpHost } from './native-build.js';
import {
  inWorldRange,
  planTestbed,
  podKey,
  type Plan,
  type PlannedNode,
  type PlannedPod,
  type PlannedWorld,
  type TestbedSpec,
} from './plan.js';

/** Where a run's bpf pins live (DESIGN.md); removed with the run. */
export const BPF_PIN_ROOT = '/sys/fs/bpf/meshplane';

export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

export interface ProbeOutcome {
  outcome: Outcome;
  micros: number;
}

/**
 * The namespaces, links and mp-host processes of one run, created by
 * `createTestbed` and removed by `destroy()` — also when this process exits
 * or dies of SIGINT/SIGTERM before that (the launcher's exit safety net).
 * Not thread-safe across destroy(): do not probe while destroying.
 */
export class Testbed {
  private destroying: Promise<void> | undefined;

  constructor(
    readonly plan: Plan,
    private readonly hosts: Map<string, HostProcess>,
    private readonly releaseGuard: () => void,
  ) {}

  get runId(): string {
    return this.plan.runId;
  }

  /** The run's pin directory; the datapath of node N pins under `<this>/<N>`. */
  get pinDir(): string {
    return `${BPF_PIN_ROOT}/${this.plan.runId}`;
  }

  node(cluster: string, name: string): PlannedNode {
    const n = this.plan.nodes.find((x) => x.cluster === cluster && x.name === name);
    if (n === undefined) throw new MeshError('NOT_FOUND', `no node ${cluster}/${name} in this run`);
    return n;
  }

  /** A pod by cluster/namespace/name. */
  pod(key: string): PlannedPod {
    const p = this.plan.pods.find((x) => podKey(x) === key);
    if (p === undefined) throw new MeshError('NOT_FOUND', `no pod ${key} in this run`);
    return p;
  }

  world(ip: string): PlannedWorld {
    const w = this.plan.world.find((x) => x.ip === ip);
    if (w === undefined) throw new MeshError('NOT_FOUND', `no world peer ${ip} in this run`);
    return w;
  }

  /** The mp-host of a pod (by key) or a world peer (by address). */
  host(keyOrIp: string): HostProcess {
    const h = this.hosts.get(keyOrIp);
    if (h === undefined) throw new MeshError('NOT_FOUND', `no host ${keyOrIp} in this run`);
    return h;
  }

  /** The address a pod key or a world address stands for. */
  addressOf(keyOrIp: string): string {
    return inWorldRange(keyOrIp) ? this.world(keyOrIp).ip : this.pod(keyOrIp).ip;
  }

  /** One real connection attempt from a pod (or world peer) to a pod key or an address. */
  probe(
    from: string,
    to: string,
    port: number,
    protocol: 'TCP' | 'UDP',
    timeoutMs: number,
  ): Promise<ProbeOutcome> {
    const ip = /^\d+\.\d+\.\d+\.\d+$/.test(to) ? to : this.pod(to).ip;
    return this.host(from).probe(protocol, ip, port, timeoutMs);
  }

  /**
   * Whether a tc bpf program is attached on both hooks of the pod's host-side
   * veth (ingress: the pod's egress policy; egress: its ingress policy).
   */
  async programsAttached(key: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const p = this.pod(key);
    const hook = async (dir: 'ingress' | 'egress'): Promise<boolean> =>
      / bpf /.test(
        await run('tc', ['-n', p.nodeNetns, 'filter', 'show', 'dev', p.hostIfname, dir], opts),
      );
    return (await hook('ingress')) && (await hook('egress'));
  }

  /** Stops every host process, deletes every namespace and the run's pins. Idempotent. */
  destroy(): Promise<void> {
    return (this.destroying ??= (async () => {
      await Promise.all([...this.hosts.values()].map((h) => h.stop()));
      await removeNamespaces(this.plan);
      await rm(this.pinDir, { recursive: true, force: true });
      this.releaseGuard();
    })());
  }
}

async function removeNamespaces(plan: Plan): Promise<void> {
  const existing = await listRunNamespaces(plan.prefix);
  // Pods first: deleting a pod namespace also removes its veth peer in the node.
  for (const ns of existing.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => {});
}

/** Namespaces whose name starts with `prefix`. */
export async function listRunNamespaces(prefix: string): Promise<string[]> {
  const out = await run('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

/**
 * Creates the run's namespaces, links, addresses and routes, then starts one
 * mp-host per pod and world peer serving its ports. On any failure everything
 * made so far is removed before the error is rethrown.
 */
export async function createTestbed(
  spec: TestbedSpec,
  opts: {
    signal?: AbortSignal;
    /** pin every host process (pods and world peers) to this CPU */
    hostCpu?: number;
  } = {},
): Promise<Testbed> {
  const plan = planTestbed(spec);
  const binary = await buildMpHost(opts);
  if ((await listRunNamespaces(plan.prefix)).length > 0)
    throw new MeshError('CONFLICT', `namespaces ${plan.prefix}* exist already: run id clash`);
  const pinDir = `${BPF_PIN_ROOT}/${plan.runId}`;
  // Synchronous last resort if this process ends without destroy().
  const releaseGuard = guardCleanup(() => {
    for (const ns of [...plan.namespaces].reverse()) runQuietlySync('ip', ['netns', 'del', ns]);
    runQuietlySync('rm', ['-rf', pinDir]);
  });
  const hosts = new Map<string, HostProcess>();
  const bed = new Testbed(plan, hosts, releaseGuard);
  try {
    const signal = opts.signal;
    const hostOpts = { signal, cpu: opts.hostCpu };
    for (const ns of plan.namespaces) await run('ip', ['netns', 'add', ns], { signal });
    for (const s of plan.sysctls)
      await run('ip', ['netns', 'exec', s.netns, 'sysctl', '-q', '-w', ...s.settings], { signal });
    for (const step of plan.steps)
      await run('ip', ['-n', step.netns, '-batch', '-'], {
        input: `${step.lines.join('\n')}\n`,
        signal,
      });
    for (const s of plan.linkSysctls)
      await run('ip', ['netns', 'exec', s.netns, 'sysctl', '-q', '-w', ...s.settings], { signal });
    const started = await Promise.all([
      ...plan.pods.map(async (p) => {
        const key = podKey(p);
        return [key, await HostProcess.start(key, binary, p.netns, p, hostOpts)] as const;
      }),
      ...plan.world.map(
        async (w) =>
          [w.ip, await HostProcess.start(`world ${w.ip}`, binary, w.netns, w, hostOpts)] as const,
      ),
    ]);
    for (const [k, h] of started) hosts.set(k, h);
    return bed;
  } catch (err) {
    await bed.destroy();
    throw err;
  }
}
