import type { Command } from 'commander';
import { protocolNumber } from '../../common/index.js';
import { listPolicies, tracePolicy } from '../admin-client.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

export function registerPolicies(program: Command): void {
  meshOptions(
    program.command('policies').description('policies: selected endpoints, warnings, errors'),
  ).action(async (opts: MeshOptions) => {
    const r = await listPolicies(await meshTarget(opts));
    if (opts.json) {
      printJson({
        revision: r.revision,
        policies: r.policies.map((p) => ({
          cluster: p.cluster,
          kind: p.kind,
          namespace: p.namespace,
          name: p.name,
          selected: p.selected,
          warnings: p.warnings,
          errors: p.errors,
          audit: p.audit,
        })),
      });
      return;
    }
    const lines = [`mesh revision ${r.revision}`];
    for (const p of r.policies) {
      lines.push(
        `${p.cluster}/${p.kind}/${p.namespace ? `${p.namespace}/` : ''}${p.name}${p.audit ? ' (audit)' : ''}: selects ${p.selected.length} endpoint(s)`,
      );
      for (const s of p.selected) lines.push(`    ${s}`);
      for (const w of p.warnings) lines.push(`    warning: ${w}`);
      for (const e of p.errors) lines.push(`    error: ${e}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });

  const policy = program.command('policy').description('policy tools');
  meshOptions(
    policy.command('trace').description('verdict for one connection and the decision that made it'),
  )
    .requiredOption('--from <c/ns/pod>', 'source endpoint')
    .requiredOption('--to <c/ns/pod|ip>', 'destination endpoint or address')
    .requiredOption('--port <port[/proto]>', 'destination port, optionally /TCP, /UDP or /SCTP')
    .action(async (opts: MeshOptions & { from: string; to: string; port: string }) => {
      const [portText, protoText = 'TCP'] = opts.port.split('/');
      const port = Number(portText);
      const protocol = protocolNumber(protoText.toUpperCase());
      if (!Number.isInteger(port) || port < 1 || port > 65535 || protocol === undefined) {
        throw new CliExit(
          EXIT.usage,
          `--port must be PORT or PORT/TCP|UDP|SCTP with PORT in 1..65535, got ${opts.port}`,
        );
      }
      const r = await tracePolicy(await meshTarget(opts), {
        from: opts.from,
        to: opts.to,
        port,
        protocol,
      });
      const d = r.decision!;
      const decision = {
        kind: d.kind,
        ...(d.policyName
          ? {
              policy: {
                cluster: d.policyCluster,
                kind: d.policyKind,
                namespace: d.policyNamespace,
                name: d.policyName,
              },
            }
          : {}),
        section: d.section,
        ...(d.ruleIndex >= 0 ? { ruleIndex: d.ruleIndex } : {}),
      };
      if (opts.json) {
        printJson({
          revision: r.revision,
          from: opts.from,
          to: opts.to,
          port,
          protocol: protoText.toUpperCase(),
          allowed: r.allowed,
          decision,
          reason: r.reason,
        });
        return;
      }
      process.stdout.write(
        `${r.allowed ? 'ALLOWED' : 'DENIED'}  ${opts.from} → ${opts.to}:${port}/${protoText.toUpperCase()}\n  ${r.reason}\n`,
      );
    });
}
