import type { Command } from 'commander';
import { waitRevision } from '../admin-client.js';
import { tracedCommand, type CliTelemetry } from '../call-tracing.js';
import { meshOptions, type MeshOptions } from './common-options.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { waitJson } from '../skew-json.js';
import { durationArg } from '../skew-gate.js';
import { meshTarget } from '../state-dir.js';

interface WaitOptions extends MeshOptions {
  revision: string;
  timeout: string;
}

export function registerWait(program: Command, telemetry: CliTelemetry): void {
  meshOptions(
    program
      .command('wait')
      .description('wait until every affected node is synced at revision R or later')
      .requiredOption(
        '--revision <R>',
        'the revision to wait for (e.g. what `apply --json` printed)',
      )
      .option('--timeout <duration>', 'give up after this long (at most 10m)', '60s'),
  ).action(async (opts: WaitOptions) => {
    if (!/^\d+$/.test(opts.revision))
      throw new CliExit(EXIT.usage, `--revision: "${opts.revision}" is not a revision number`);
    const timeoutMs = durationArg('--timeout', opts.timeout);
    if (timeoutMs < 1 || timeoutMs > 600_000)
      throw new CliExit(EXIT.usage, `--timeout: must be between 1ms and 10m`);
    const target = await meshTarget(opts);
    const revision = Number(opts.revision);
    // The control plane's wait span is this span's child (trace context in the call's metadata).
    const w = await tracedCommand(
      telemetry,
      'meshctl wait',
      { 'meshplane.revision': revision },
      async (metadata, span) => {
        const res = await waitRevision(target, { revision, timeoutMs }, { metadata });
        span.setAttributes({
          'meshplane.synced': res.synced,
          'meshplane.laggards': res.laggards.length,
        });
        return res;
      },
    );
    if (opts.json) process.stdout.write(`${JSON.stringify(waitJson(w))}\n`);
    if (w.synced) {
      if (!opts.json)
        process.stderr.write(`every node is synced at revision ${opts.revision} or later\n`);
      return;
    }
    if (w.observedRevision < Number(opts.revision)) {
      throw new CliExit(
        EXIT.failed,
        `revision ${opts.revision} not reached after ${opts.timeout}: the control plane has read the mesh only up to revision ${w.observedRevision}`,
      );
    }
    const names = w.laggards
      .map(
        (l) =>
          `${l.cluster}/${l.node?.name ?? '?'} (${l.node?.state ?? '?'}, synced at ${l.node?.syncedRevision ?? 0}${l.node?.error ? `: ${l.node.error}` : ''})`,
      )
      .join('; ');
    throw new CliExit(
      EXIT.failed,
      `not every node is synced at revision ${opts.revision} after ${opts.timeout}; behind: ${names}`,
    );
  });
}
