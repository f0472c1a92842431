import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CliExit, EXIT } from './exit-codes.js';

/**
 * Where `meshctl up` keeps what other commands need to find the running
 * mesh: `.meshplane/` under the current directory, unless --state-dir or
 * MESHPLANE_STATE_DIR says otherwise.
 */
export function stateDirOf(flag: string | undefined): string {
  return resolve(flag ?? process.env.MESHPLANE_STATE_DIR ?? '.meshplane');
}

export interface MeshState {
  apiVersion: 'meshplane/v1';
  pid: number;
  startedAt: string;
  controlPlane: string;
  etcd: string;
  nats: string;
  datapath: string;
  clusters: { name: string; id: number; nodes: string[] }[];
  logs: string;
  /** the control plane's dashboard (http://HOST:PORT/), when it serves one */
  dashboard?: string;
  /**
   * How meshctl reaches the admin API: the mesh CA and the admin certificate
   * and key (paths under `<state-dir>/tls/`), or 'insecure' for `up --insecure`.
   * Absent in a mesh.json written before mTLS: meshctl looks in `<state-dir>/tls/`.
   */
  tls?: { ca: string; cert: string; key: string } | 'insecure';
  /** Prometheus endpoints: the control plane's and each agent's ("cluster/node" → URL) */
  metrics?: { controlPlane: string; agents: Record<string, string> };
  /** `up --datapath ebpf`: the run's test hosts (DESIGN.md "Test hosts"), removed when `up` stops */
  testbed?: {
    runId: string;
    /** the run's bpf pins (each node's under `<pinDir>/<node>`) */
    pinDir: string;
    /** "cluster/node" → the node's network namespace */
    nodes: Record<string, string>;
    /** "cluster/namespace/pod" → its namespace and address, and its host-side veth in the node's namespace */
    pods: Record<string, { netns: string; ip: string; nodeNetns: string; hostIfname: string }>;
  };
}

const FILE = 'mesh.json';

export async function writeMeshState(dir: string, state: MeshState): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, FILE), `${JSON.stringify(state, null, 2)}\n`);
}

export async function readMeshState(dir: string): Promise<MeshState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, FILE), 'utf8')) as MeshState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function removeMeshState(dir: string): Promise<void> {
  await rm(join(dir, FILE), { force: true });
}

/** Which control plane to call, and the state dir whose admin certificate to present. */
export interface MeshTarget {
  address: string;
  stateDir: string;
}

/** The control plane: --server, else the state dir of a running `meshctl up`. */
export async function meshTarget(opts: {
  server?: string;
  stateDir?: string;
}): Promise<MeshTarget> {
  const dir = stateDirOf(opts.stateDir);
  if (opts.server) return { address: opts.server, stateDir: dir };
  const state = await readMeshState(dir);
  if (!state) {
    throw new CliExit(
      EXIT.unreachable,
      `no running mesh found: ${join(dir, FILE)} does not exist (start one with \`meshctl up\`, or pass --server HOST:PORT)`,
    );
  }
  return { address: state.controlPlane, stateDir: dir };
}
