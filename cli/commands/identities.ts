import type { Command } from 'commander';
import { listIdentities } from '../admin-client.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

export function registerIdentities(program: Command): void {
  meshOptions(
    program
      .command('identities')
      .description('security identities: number, cluster, endpoints holding it'),
  )
    .option('--cluster <name>', 'only this cluster')
    .option('--labels', "show each identity's labels")
    .action(async (opts: MeshOptions & { cluster?: string; labels?: boolean }) => {
      const r = await listIdentities(await meshTarget(opts), opts.cluster ?? '');
      const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);
      if (opts.json) {
        printJson({
          identities: r.identities.map((i) => ({
            id: i.id,
            cluster: i.cluster,
            endpoints: i.endpoints,
            unusedSince: iso(i.unusedSinceUnixMs),
            ...(opts.labels ? { labels: i.labels } : {}),
          })),
        });
        return;
      }
      const lines = ['ID         CLUSTER          ENDPOINTS  UNUSED SINCE'];
      for (const i of r.identities) {
        lines.push(
          `${String(i.id).padEnd(10)} ${i.cluster.padEnd(16)} ${String(i.endpoints).padEnd(10)} ${iso(i.unusedSinceUnixMs) ?? '-'}`,
        );
        if (opts.labels) for (const l of i.labels) lines.push(`    ${l}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
