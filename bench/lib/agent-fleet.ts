/**
 * The propagation benchmark's node agents: their certificates (issued by the
 * mesh CA, as `meshctl up` issues them) and the worker processes that run
 * them, a few hundred agents per process.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  issueCertificate,
  meshTlsLayout,
  nodeSpiffeId,
  type TlsFiles,
} from '../../common/tls/index.js';
import type { AgentPlan } from './agent-worker.js';
import { spawnTsx, type Child } from './child.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER_SCRIPT = fileURLToPath(new URL('./agent-worker.ts', import.meta.url));

export interface AgentId {
  cluster: string;
  node: string;
}

/**
 * Client certificates for agents the mesh CA in `tlsDir` has not issued yet
 * (as writeMeshTls issues them: SAN URI spiffe://meshplane/cluster/C/node/N),
 * `concurrency` openssl processes at a time.
 */
export async function issueAgentCertificates(
  tlsDir: string,
  agents: readonly AgentId[],
  opts: { concurrency: number; signal?: AbortSignal },
): Promise<Map<string, TlsFiles>> {
  const layout = meshTlsLayout(tlsDir);
  const out = new Map<string, TlsFiles>();
  const queue = agents.values();
  const worker = async (): Promise<void> => {
    for (let next = queue.next(); !next.done; next = queue.next()) {
      const { cluster, node } = next.value;
      const files = layout.agent(cluster, node);
      await mkdir(join(tlsDir, 'agents', cluster), { recursive: true, mode: 0o700 });
      await issueCertificate(
        layout.ca,
        files,
        {
          commonName: `${cluster}/${node}`,
          subjectAltNames: [`URI:${nodeSpiffeId(cluster, node)}`],
          usage: 'client',
          days: 1,
        },
        opts.signal ? { signal: opts.signal } : {},
      );
      out.set(`${cluster}/${node}`, files);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return out;
}

export interface Worker {
  child: Child;
  agents: number;
  ready: Promise<void>;
}

/**
 * Starts one worker process per `perWorker` agents. `ready` resolves once
 * every agent of the worker has applied its first revision; it rejects if
 * the worker exits before.
 */
export async function startWorkers(
  dir: string,
  server: string,
  ca: string,
  agents: readonly (AgentId & { files: TlsFiles })[],
  opts: {
    perWorker: number;
    log: (line: string) => void;
    first?: number;
    /** node options for the workers, e.g. --cpu-prof */
    nodeArgs?: readonly string[];
  },
): Promise<Worker[]> {
  const workers: Worker[] = [];
  for (let i = 0; i < agents.length; i += opts.perWorker) {
    const index = (opts.first ?? 0) + workers.length;
    const slice = agents.slice(i, i + opts.perWorker);
    const plan: AgentPlan = {
      server,
      ca,
      agents: slice.map((a) => ({
        cluster: a.cluster,
        node: a.node,
        cert: a.files.cert,
        key: a.files.key,
      })),
    };
    const file = join(dir, `agents-${index}.json`);
    await writeFile(file, JSON.stringify(plan));
    let resolveReady!: () => void;
    let rejectReady!: (err: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      resolveReady = res;
      rejectReady = rej;
    });
    let lastProgress = Date.now();
    const child = spawnTsx(WORKER_SCRIPT, ['--plan', file], {
      cwd: REPO_ROOT,
      ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
      onLine: (line) => {
        const msg = JSON.parse(line) as { event: string } & Record<string, unknown>;
        if (msg.event === 'ready') resolveReady();
        else if (msg.event === 'progress' && Date.now() - lastProgress > 10_000) {
          lastProgress = Date.now();
          opts.log(`[agents ${index}] ${line}`);
        } else if (msg.event === 'rejected') opts.log(`[agents ${index}] NACK ${line}`);
      },
      onStderr: (line) => opts.log(`[agents ${index}] ${line}`),
    });
    void child.exited.then((code) =>
      rejectReady(new Error(`agent worker ${index} exited (${code}) before its agents were ready`)),
    );
    workers.push({ child, agents: slice.length, ready });
  }
  return workers;
}
