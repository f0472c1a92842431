import type { Command } from 'commander';
import { fetchStatus, joinCluster, removeCluster } from '../admin-client.js';
import { tracedCommand, type CliTelemetry } from '../call-tracing.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { meshTarget } from '../state-dir.js';
import { statusJson } from '../status-json.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

export function registerClusters(program: Command, telemetry: CliTelemetry): void {
  const clusters = meshOptions(
    program
      .command('clusters')
      .description('member clusters: id, nodes, endpoints, identities, source health'),
  ).action(async (opts: MeshOptions) => {
    const s = await fetchStatus(await meshTarget(opts));
    if (opts.json) {
      const doc = statusJson(s);
      printJson({
        revision: doc.revision,
        clusters: s.clusters.map((c) => ({
          name: c.name,
          id: c.id,
          joinedAt: c.joinedAt || null,
          nodes: c.nodes.map((n) => n.name),
          endpoints: c.endpoints,
          identities: c.identities,
          source: {
            connected: c.source?.connected ?? false,
            lastEventAt: c.source?.lastEventUnixMs
              ? new Date(c.source.lastEventUnixMs).toISOString()
              : null,
            lastError: c.source?.lastError ?? '',
            refusedChangeSets: c.source?.refusedChangeSets ?? 0,
          },
        })),
      });
      return;
    }
    const rows = s.clusters.map(
      (c) =>
        `${c.name.padEnd(16)} ${String(c.id).padEnd(4)} ${String(c.nodes.length).padEnd(6)} ${String(c.endpoints).padEnd(10)} ${String(c.identities).padEnd(11)} ${c.source?.connected ? 'connected' : 'not connected'}${c.source?.lastEventUnixMs ? `, last event ${new Date(c.source.lastEventUnixMs).toISOString()}` : ''}${c.source?.lastError ? `\n  error: ${c.source.lastError}` : ''}`,
    );
    process.stdout.write(
      `NAME             ID   NODES  ENDPOINTS  IDENTITIES  SOURCE\n${rows.join('\n')}\n`,
    );
  });

  meshOptions(
    clusters
      .command('join')
      .description('admit a cluster to the mesh (name and id must be unique)'),
  )
    .requiredOption('--name <name>', 'cluster name (DNS label)')
    .requiredOption('--id <id>', 'cluster id, 1..255')
    .action(async (opts: MeshOptions & { name: string; id: string }) => {
      const id = Number(opts.id);
      if (!Number.isInteger(id))
        throw new CliExit(EXIT.usage, `--id must be an integer, got ${opts.id}`);
      const target = await meshTarget(opts);
      const r = await tracedCommand(
        telemetry,
        'meshctl clusters join',
        { 'meshplane.cluster': opts.name },
        (metadata) => joinCluster(target, opts.name, id, { metadata }),
      );
      if (opts.json)
        printJson({ revision: r.revision, cluster: r.member, alreadyMember: r.alreadyMember });
      else
        process.stderr.write(
          `cluster ${opts.name} (id ${id}) ${r.alreadyMember ? 'was already a member' : 'joined'} at revision ${r.revision}\n`,
        );
    });

  meshOptions(
    clusters
      .command('remove')
      .description(
        'remove a cluster: its identities, endpoints and exports disappear mesh-wide in one revision',
      ),
  )
    .requiredOption('--name <name>', 'cluster name')
    .action(async (opts: MeshOptions & { name: string }) => {
      const target = await meshTarget(opts);
      const r = await tracedCommand(
        telemetry,
        'meshctl clusters remove',
        { 'meshplane.cluster': opts.name },
        (metadata) => removeCluster(target, opts.name, { metadata }),
      );
      if (opts.json) printJson({ revision: r.revision });
      else process.stderr.write(`cluster ${opts.name} removed at revision ${r.revision}\n`);
    });
}
