// Real processes for the telemetry tests: the control plane and node agents
// started from their binaries, with their ready lines and JSON logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { connect, headers as natsHeaders, type NatsConnection } from 'nats';
import type { ChangeSetEvent, MeshObject, PodObject } from '../../common/index.js';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface Proc {
  child: ChildProcess;
  ready: Promise<Record<string, unknown>>;
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
}

/** Starts `node --import tsx FILE ARGS`; `ready` is its {"event":"ready"} stdout line. */
export function startProc(file: string, args: string[]): Proc {
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), `${ROOT}${file}`, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => {
    try {
      logs.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      logs.push({ msg: l });
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (l) => {
      try {
        const m = JSON.parse(l) as Record<string, unknown>;
        if (m.event === 'ready') resolve(m);
      } catch {
        // not JSON
      }
    });
    void exited.then((code) =>
      reject(
        new Error(
          `${file} exited (${String(code)}) before ready: ${JSON.stringify(logs.slice(-5))}`,
        ),
      ),
    );
  });
  ready.catch(() => undefined);
  return { child, ready, logs, exited };
}

export async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGCONT');
  p.child.kill('SIGKILL');
  await p.exited;
}

export const EU = {
  name: 'eu',
  id: 1,
  nodes: ['eu-1', 'eu-2', 'eu-3', 'eu-4', 'eu-5'],
  podCIDR: '10.1.0.0/16',
};

let nextIp = 10;
export const pod = (name: string, node: string): PodObject => ({
  kind: 'Pod',
  cluster: 'eu',
  namespace: 'shop',
  name,
  labels: { app: name.replace(/-\d+$/, '') },
  ips: [`10.1.0.${nextIp++}`],
  node,
  serviceAccount: 'default',
  ports: [],
  ready: true,
  hostNetwork: false,
});

/** Publishes one change set of cluster eu, as a cluster source would. */
export async function publish(
  nc: NatsConnection,
  upserts: MeshObject[],
  headers?: Record<string, string>,
  cluster: ChangeSetEvent['cluster'] = EU,
): Promise<void> {
  const ev: ChangeSetEvent = {
    apiVersion: 'meshplane/v1',
    cluster,
    full: false,
    upserts,
    deletes: [],
    origin: 'test',
  };
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers ?? {})) h.set(k, v);
  await nc.jetstream().publish('meshplane.events.eu', JSON.stringify(ev), { headers: h });
}

export { connect };
