import type { Command } from 'commander';
import { listServices } from '../admin-client.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

export function registerServices(program: Command): void {
  meshOptions(
    program
      .command('services')
      .description(
        "ServiceImports: ports, clusterset IPs, type, source clusters, and the exports' conditions",
      ),
  ).action(async (opts: MeshOptions) => {
    const r = await listServices(await meshTarget(opts));
    if (opts.json) {
      printJson({
        revision: r.revision,
        imports: r.imports.map((i) => ({
          namespace: i.namespace,
          name: i.name,
          type: i.type,
          sessionAffinity: i.sessionAffinity,
          ips: i.ips,
          ports: i.ports,
          sourceClusters: i.clusters,
          importedInto: i.importedInto,
          endpoints: i.endpoints.map((e) => ({
            labels: {
              'multicluster.kubernetes.io/service-name': i.name,
              'multicluster.kubernetes.io/source-cluster': e.cluster,
            },
            addresses: e.addresses,
            ports: e.ports,
          })),
        })),
        exports: r.exports.map((e) => ({
          cluster: e.cluster,
          namespace: e.namespace,
          name: e.name,
          createdAt: e.createdAt,
          conditions: e.conditions,
        })),
      });
      return;
    }
    const lines = [`mesh revision ${r.revision}`];
    for (const i of r.imports) {
      lines.push(
        `${i.namespace}/${i.name}  ${i.type} ${i.ips.join(',') || '-'}  ports ${i.ports.map((p) => `${p.name ? `${p.name}:` : ''}${p.port}/${p.protocol}`).join(',')}  from ${i.clusters.join(',')}  into ${i.importedInto.join(',')}`,
      );
      for (const e of i.endpoints) lines.push(`    ${e.cluster}: ${e.addresses.join(', ')}`);
    }
    lines.push('', 'EXPORT                                   CONDITIONS');
    for (const e of r.exports) {
      lines.push(
        `${`${e.cluster}/${e.namespace}/${e.name}`.padEnd(40)} ${e.conditions.map((c) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`).join(' ')}`,
      );
      for (const c of e.conditions)
        if (c.status === 'True' && c.type === 'Conflict') lines.push(`    ${c.message}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}
