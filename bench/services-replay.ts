/**
 * `npm run bench -- services-replay --input FILE [--rounds N] [--json]`
 *
 * The snapshot side of `services`, on a fixed input: replays a recording of
 * the mesh-state etcd revisions (`npm run bench -- services --record FILE`)
 * into a fresh in-process MeshModel and SnapshotCache, revision by revision,
 * as the control plane's etcd sync does, and measures the CPU time of each
 * measured (churn) revision's model fold and snapshot update. No etcd, NATS
 * or network: two versions of the code replayed on one recording do the same
 * work whatever else the machine is running, so their CPU figures compare
 * (wall-clock latency is `services`' job). Figures are the median over
 * rounds of each round's total, and per-revision percentiles of all rounds.
 */
import { parseArgs } from 'node:util';
import { MeshModel } from '../controlplane/model/index.js';
import { SnapshotCache } from '../controlplane/snapshot/index.js';
import { keyLayout } from '../controlplane/store/index.js';
import { readMeshRecording } from './lib/mesh-recording.js';
import { percentile, round } from './lib/stats.js';

const cpuMs = (start: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

export async function runServicesReplay(
  file: string,
  rounds: number,
): Promise<Record<string, number>> {
  const { meta, batches } = await readMeshRecording(file);
  const totals = { model: [] as number[], update: [] as number[], services: [] as number[] };
  const perRevision: number[] = [];
  let measured = 0;
  let meshRevisions = 0;
  for (let r = 0; r < rounds; r++) {
    const model = new MeshModel(keyLayout());
    const cache = new SnapshotCache();
    let servicesMs = 0;
    let measuring = false;
    const services = cache.services;
    const servicesUpdate = services.update.bind(services);
    services.update = (m, change) => {
      const t = process.cpuUsage();
      try {
        return servicesUpdate(m, change);
      } finally {
        if (measuring) servicesMs += cpuMs(t);
      }
    };
    let modelMs = 0;
    let updateMs = 0;
    measured = 0;
    meshRevisions = 0;
    for (const batch of batches) {
      if (!measuring && batch.revision > meta.measuredAfter) {
        measuring = true;
        (globalThis as { gc?: () => void }).gc?.();
      }
      const t0 = process.cpuUsage();
      const change = model.apply(batch.events);
      const t1 = process.cpuUsage();
      const rev = cache.update(batch.revision, Date.now(), model, change);
      if (!measuring) continue;
      const u = cpuMs(t1);
      modelMs += cpuMs(t0) - u;
      updateMs += u;
      perRevision.push(u);
      measured += 1;
      if (rev) meshRevisions += 1;
    }
    totals.model.push(modelMs);
    totals.update.push(updateMs);
    totals.services.push(servicesMs);
  }
  const median = (xs: number[]): number => round(percentile(xs, 50), 1);
  return {
    replay_update_cpu_ms: median(totals.update),
    replay_services_cpu_ms: median(totals.services),
    replay_model_cpu_ms: median(totals.model),
    replay_update_cpu_p50_ms: round(percentile(perRevision, 50), 2),
    replay_update_cpu_p99_ms: round(percentile(perRevision, 99), 2),
    replay_update_cpu_us_per_endpoint: round(
      (median(totals.update) * 1000) / Math.max(1, meta.measuredEndpoints),
    ),
    replay_revisions: measured,
    replay_mesh_revisions: meshRevisions,
    replay_rounds: rounds,
  };
}

/** The runner's entry. */
export async function servicesReplayBench(json: boolean, argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      json: { type: 'boolean' },
      input: { type: 'string' },
      rounds: { type: 'string', default: '3' },
    },
    strict: true,
  });
  const rounds = Number(values.rounds);
  if (values.input === undefined || !Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write(
      'usage: npm run bench -- services-replay --input FILE [--rounds N] [--json]\n' +
        '  FILE from `npm run bench -- services --record FILE`\n',
    );
    process.exit(2);
  }
  const f = await runServicesReplay(values.input, rounds);
  const lines = [
    `services-replay: ${f.replay_revisions} measured etcd revisions (${f.replay_mesh_revisions} mesh revisions), median of ${rounds} rounds`,
    `  snapshot update CPU ${f.replay_update_cpu_ms} ms in all (${f.replay_update_cpu_us_per_endpoint} µs per churned endpoint), ` +
      `per revision p50 / p99 ${f.replay_update_cpu_p50_ms} / ${f.replay_update_cpu_p99_ms} ms`,
    `  of which ServiceImports ${f.replay_services_cpu_ms} ms; model fold (before it) ${f.replay_model_cpu_ms} ms`,
  ];
  (json ? process.stderr : process.stdout).write(`${lines.join('\n')}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ bench: 'services-replay', figures: f })}\n`);
}
