import type { Command } from 'commander';
import { listEndpoints } from '../admin-client.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

export function registerEndpoints(program: Command): void {
  meshOptions(
    program
      .command('endpoints')
      .description(
        'endpoints: identity, enforcement per direction, map entries against capacity, errors',
      ),
  )
    .option('--cluster <name>', 'only this cluster')
    .action(async (opts: MeshOptions & { cluster?: string }) => {
      const r = await listEndpoints(await meshTarget(opts), opts.cluster ?? '');
      if (opts.json) {
        printJson({
          revision: r.revision,
          endpoints: r.endpoints.map((e) => ({
            cluster: e.cluster,
            namespace: e.namespace,
            name: e.name,
            node: e.node,
            ips: e.ips,
            identity: e.identity,
            enforcement: { ingress: e.ingressEnforced, egress: e.egressEnforced },
            entries: e.entries,
            capacity: e.capacity,
            version: e.version,
            errors: e.errors,
          })),
        });
        return;
      }
      const onOff = (b: boolean): string => (b ? 'enforced' : 'open');
      const lines = [
        `mesh revision ${r.revision}`,
        'ENDPOINT                                   NODE        IDENTITY   INGRESS   EGRESS    ENTRIES',
      ];
      for (const e of r.endpoints) {
        lines.push(
          `${`${e.cluster}/${e.namespace}/${e.name}`.padEnd(42)} ${e.node.padEnd(11)} ${String(e.identity).padEnd(10)} ${onOff(e.ingressEnforced).padEnd(9)} ${onOff(e.egressEnforced).padEnd(9)} ${e.entries}/${e.capacity}`,
        );
        for (const err of e.errors) lines.push(`    error: ${err}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
