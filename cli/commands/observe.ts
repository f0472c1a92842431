import type { Command } from 'commander';
import { flowJson, flowLine } from '../flow-json.js';
import { observeFlows } from '../observe-client.js';
import { meshTarget } from '../state-dir.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { meshOptions, type MeshOptions } from './common-options.js';

interface ObserveOptions extends MeshOptions {
  from?: string;
  to?: string;
  verdict?: string;
  follow?: boolean;
  last?: string;
}

export function registerObserve(program: Command): void {
  meshOptions(
    program
      .command('observe')
      .description(
        'flows and verdicts from the datapath: recent ones the control plane holds, -f to follow',
      )
      .option('--from <peer>', 'source: CLUSTER[/NAMESPACE[/POD]], an IP address or an identity')
      .option('--to <peer>', 'destination, as --from')
      .option('--verdict <v>', 'FORWARDED, DROPPED or AUDIT')
      .option('-f, --follow', 'after the recent flows, print new ones until Ctrl-C')
      .option('--last <n>', 'at most this many recent flows (the newest)'),
  ).action(async (opts: ObserveOptions) => {
    let last = 0;
    if (opts.last !== undefined) {
      last = Number(opts.last);
      if (!Number.isInteger(last) || last < 0)
        throw new CliExit(EXIT.usage, `--last: "${opts.last}" is not a whole number`);
    }
    const target = await meshTarget(opts);
    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      for await (const f of observeFlows(
        target,
        {
          from: opts.from ?? '',
          to: opts.to ?? '',
          verdict: opts.verdict ?? '',
          follow: opts.follow ?? false,
          last,
        },
        { signal: stop.signal },
      )) {
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ apiVersion: 'meshplane/v1', ...flowJson(f) })}\n`
            : `${flowLine(f)}\n`,
        );
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
