import type { Command } from 'commander';

export interface MeshOptions {
  json?: boolean;
  server?: string;
  stateDir?: string;
}

/** --json, --server and --state-dir, shared by every command that talks to a running mesh. */
export function meshOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'one JSON document on stdout')
    .option('--server <host:port>', 'control plane address (default: from the state dir)')
    .option(
      '--state-dir <dir>',
      'state dir of `meshctl up` (default .meshplane or $MESHPLANE_STATE_DIR)',
    );
}

export function printJson(doc: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ apiVersion: 'meshplane/v1', ...doc })}\n`);
}
