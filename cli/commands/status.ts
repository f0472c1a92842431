import type { Command } from 'commander';
import { fetchStatus } from '../admin-client.js';
import { meshTarget } from '../state-dir.js';
import { statusJson, statusTable } from '../status-json.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('components, clusters, and agents with acked/synced revision and state')
    .option('--json', 'one JSON document on stdout')
    .option('--server <host:port>', 'control plane address (default: from the state dir)')
    .option(
      '--state-dir <dir>',
      'state dir of `meshctl up` (default .meshplane or $MESHPLANE_STATE_DIR)',
    )
    .action(async (opts: { json?: boolean; server?: string; stateDir?: string }) => {
      const status = await fetchStatus(await meshTarget(opts));
      process.stdout.write(
        opts.json ? `${JSON.stringify(statusJson(status))}\n` : `${statusTable(status)}\n`,
      );
    });
}
