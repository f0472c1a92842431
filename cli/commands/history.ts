import type { Command } from 'commander';
import type { AuditEntry } from '../../proto/index.js';
import { listHistory } from '../change-set-client.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

function entryJson(e: AuditEntry): Record<string, unknown> {
  return {
    changeSet: e.id,
    who: e.who,
    at: new Date(e.atUnixMs).toISOString(),
    action: e.action,
    status: e.status,
    revision: e.revision,
    clusters: e.clusters,
    objects: e.objects.map((o) => ({
      cluster: o.cluster,
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      action: o.action,
    })),
    files: e.files,
    ...(e.error ? { error: e.error } : {}),
  };
}

export function registerHistory(program: Command): void {
  meshOptions(
    program
      .command('history')
      .description('the audit trail of apply/delete: who changed what, when, at which revision'),
  )
    .option('--cluster <name>', 'only change sets touching this cluster')
    .option('--limit <n>', 'newest N entries', '100')
    .action(async (opts: MeshOptions & { cluster?: string; limit: string }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        throw new CliExit(EXIT.usage, `--limit must be a positive integer, got ${opts.limit}`);
      }
      const r = await listHistory(await meshTarget(opts), { cluster: opts.cluster ?? '', limit });
      if (opts.json) {
        printJson({ entries: r.entries.map(entryJson) });
        return;
      }
      const lines = ['WHEN                      WHO  ACTION  STATUS  REVISION  CLUSTERS  OBJECTS'];
      for (const e of r.entries) {
        const objects = e.objects.map(
          (o) =>
            `${o.cluster}/${o.kind}/${o.namespace ? `${o.namespace}/` : ''}${o.name} ${o.action}`,
        );
        lines.push(
          [
            new Date(e.atUnixMs).toISOString(),
            e.who,
            e.action,
            e.status,
            e.revision > 0 ? String(e.revision) : '-',
            e.clusters.map((c) => c.cluster).join(',') || '-',
            objects.join(', ') || e.files.join(', '),
          ].join('  '),
        );
        if (e.error) lines.push(`    error: ${e.error.replaceAll('\n', '\n    ')}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
