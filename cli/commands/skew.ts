import type { Command } from 'commander';
import { fetchSkew } from '../admin-client.js';
import { meshOptions, type MeshOptions } from './common-options.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { skewJson, skewTable } from '../skew-json.js';
import { durationArg, skewViolations } from '../skew-gate.js';
import { meshTarget } from '../state-dir.js';

interface SkewOptions extends MeshOptions {
  watch?: boolean;
  maxAge?: string;
  interval: string;
}

export function registerSkew(program: Command): void {
  meshOptions(
    program
      .command('skew')
      .description(
        'per cluster and node: state, acked/synced revision, lag; recent revisions with convergence, skew window and latency split',
      )
      .option('--watch', 'refresh until Ctrl-C (with --json: one document per refresh, JSON Lines)')
      .option(
        '--max-age <duration>',
        'exit 1 if any node is pending or disconnected longer than this, nacked, or diverged',
      )
      .option('--interval <duration>', 'refresh interval with --watch', '1s'),
  ).action(async (opts: SkewOptions) => {
    const maxAgeMs = opts.maxAge === undefined ? undefined : durationArg('--max-age', opts.maxAge);
    const intervalMs = durationArg('--interval', opts.interval);
    const target = await meshTarget(opts);
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    for (;;) {
      const s = await fetchSkew(target);
      const violations =
        maxAgeMs === undefined ? new Map<string, string>() : skewViolations(s, maxAgeMs);
      if (opts.json) process.stdout.write(`${JSON.stringify(skewJson(s))}\n`);
      else {
        if (opts.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
        process.stdout.write(`${skewTable(s, violations)}\n`);
      }
      if (!opts.watch) {
        if (violations.size > 0) {
          const list = [...violations].map(([node, why]) => `${node} (${why})`).join('; ');
          throw new CliExit(EXIT.failed, `skew gate --max-age ${opts.maxAge} failed: ${list}`);
        }
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(100, intervalMs)));
      if (stop.signal.aborted) return;
    }
  });
}
