import { execFile } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { MeshError } from '../../../common/index.js';
import {
  BPF_TC_EGRESS,
  BPF_TC_F_REPLACE,
  BPF_TC_INGRESS,
  CLONE_NEWNET,
  check,
  type Libbpf,
} from './libbpf.js';
import type { LoadedObject } from './object.js';

const run = promisify(execFile);
const EEXIST = 17;
const ENOENT = 2;

/** The tc filter handle and priority meshplane's programs use on every interface ("MP"). */
export const TC_HANDLE = 0x4d50;
export const TC_PRIORITY = 1;

/**
 * A network namespace: a name under /run/netns (as `ip netns add` makes), an
 * absolute path (/proc/PID/ns/net), or undefined for the caller's own.
 */
export type Netns = string | undefined;

export function netnsPath(netns: string): string {
  return isAbsolute(netns) ? netns : join('/run/netns', netns);
}

/**
 * Runs `fn` with the calling thread in `netns`, then moves it back. Sound on
 * Node's main thread because `fn` is synchronous: no other JavaScript (and
 * no socket creation on this thread) runs while the thread is elsewhere;
 * libuv's worker threads are other threads and stay where they are.
 */
export function withNetns<T>(lib: Libbpf, netns: Netns, fn: () => T): T {
  if (netns === undefined) return fn();
  const home = openSync('/proc/thread-self/ns/net', 'r');
  let target: number | undefined;
  try {
    target = openSync(netnsPath(netns), 'r');
    if (lib.setns(target, CLONE_NEWNET) !== 0) {
      throw new MeshError('INTERNAL', `setns into ${netns} failed: errno ${lib.errno()}`);
    }
    let result: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      result = { ok: true, value: fn() };
    } catch (error) {
      result = { ok: false, error };
    }
    // Failing to come back would leave the agent in the wrong namespace: fail loudly.
    if (lib.setns(home, CLONE_NEWNET) !== 0) {
      throw new MeshError('INTERNAL', `setns back from ${netns} failed: errno ${lib.errno()}`);
    }
    if (!result.ok) throw result.error;
    return result.value;
  } finally {
    if (target !== undefined) closeSync(target);
    closeSync(home);
  }
}

export interface Interface {
  name: string;
  ifindex: number;
}

async function ipJson(
  netns: Netns,
  args: string[],
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const argv =
    netns === undefined
      ? ['ip', '-j', ...args]
      : isAbsolute(netns)
        ? ['nsenter', `--net=${netns}`, 'ip', '-j', ...args]
        : ['ip', '-j', '-n', netns, ...args];
  const { stdout } = await run(argv[0]!, argv.slice(1), { signal });
  return JSON.parse(stdout === '' ? '[]' : stdout) as unknown;
}

/**
 * The interface a local endpoint's address is routed to in `netns`, as the
 * agent finds it on a real node: a direct route (no gateway) to a device
 * other than loopback. undefined while there is none (the pod's veth has not
 * appeared yet, or traffic to it would leave through a gateway).
 */
export async function findEndpointInterface(
  ip: string,
  opts: { netns?: Netns; signal?: AbortSignal } = {},
): Promise<Interface | undefined> {
  let routes: { dev?: string; gateway?: string; type?: string }[];
  try {
    routes = (await ipJson(opts.netns, ['route', 'get', ip], opts.signal)) as typeof routes;
  } catch {
    return undefined; // unreachable: no route at all
  }
  const r = routes[0];
  if (r?.dev === undefined || r.gateway !== undefined || r.dev === 'lo') return undefined;
  if (r.type !== undefined && r.type !== 'unicast') return undefined;
  const links = (await ipJson(opts.netns, ['link', 'show', 'dev', r.dev], opts.signal)) as {
    ifindex: number;
  }[];
  const ifindex = links[0]?.ifindex;
  return ifindex === undefined ? undefined : { name: r.dev, ifindex };
}

/**
 * Attaches from_endpoint (tc ingress) and to_endpoint (tc egress) to an
 * interface, creating its clsact qdisc if needed, replacing meshplane's
 * filters if present (an upgrade or a re-attach after restart). Filters
 * outlive the agent: that is what keeps a node enforcing while it is down.
 */
export function attachPrograms(
  lib: Libbpf,
  object: LoadedObject,
  ifindex: number,
  netns?: Netns,
): void {
  withNetns(lib, netns, () => {
    const ret = lib.tcHookCreate(lib.tcHook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS));
    if (ret < 0 && ret !== -EEXIST) check(`clsact qdisc on ifindex ${ifindex}`, ret);
    for (const [point, fd, what] of [
      [BPF_TC_INGRESS, object.fromEndpointFd, 'from_endpoint (tc ingress)'],
      [BPF_TC_EGRESS, object.toEndpointFd, 'to_endpoint (tc egress)'],
    ] as const) {
      const opts = lib.tcOpts({
        progFd: fd,
        flags: BPF_TC_F_REPLACE,
        handle: TC_HANDLE,
        priority: TC_PRIORITY,
      });
      check(`attach ${what} on ifindex ${ifindex}`, lib.tcAttach(lib.tcHook(ifindex, point), opts));
    }
  });
}

/** Removes meshplane's filters from an interface (missing filters are fine). */
export function detachPrograms(lib: Libbpf, ifindex: number, netns?: Netns): void {
  withNetns(lib, netns, () => {
    for (const point of [BPF_TC_INGRESS, BPF_TC_EGRESS]) {
      const ret = lib.tcDetach(
        lib.tcHook(ifindex, point),
        lib.tcOpts({ handle: TC_HANDLE, priority: TC_PRIORITY }),
      );
      if (ret < 0 && ret !== -ENOENT && ret !== -22) check(`detach on ifindex ${ifindex}`, ret);
    }
  });
}

/** The program ids attached by meshplane on an interface (tc ingress, tc egress); 0 = none. */
export function attachedPrograms(
  lib: Libbpf,
  ifindex: number,
  netns?: Netns,
): { ingress: number; egress: number } {
  return withNetns(lib, netns, () => {
    const query = (point: number): number => {
      const opts = lib.tcOpts({ handle: TC_HANDLE, priority: TC_PRIORITY });
      return lib.tcQuery(lib.tcHook(ifindex, point), opts) === 0 ? lib.tcOptsProgId(opts) : 0;
    };
    return { ingress: query(BPF_TC_INGRESS), egress: query(BPF_TC_EGRESS) };
  });
}
