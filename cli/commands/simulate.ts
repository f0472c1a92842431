import type { Command } from 'commander';
import { formatIssue } from '../../common/index.js';
import { loadMeshFolder } from '../../clusters/src/index.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { compileProbes, readProbes } from '../probes.js';

async function simulate(opts: {
  manifests: string;
  probes: string;
  json?: boolean;
}): Promise<void> {
  const loaded = await loadMeshFolder(opts.manifests);
  if (!loaded.ok) {
    throw new CliExit(
      EXIT.usage,
      `${loaded.errors.length} validation error(s), no results:\n${loaded.errors.map((e) => `  ${formatIssue(e)}`).join('\n')}`,
    );
  }
  for (const w of loaded.warnings) process.stderr.write(`${formatIssue(w)}\n`);
  const clusters = loaded.value.clusters;
  const results = compileProbes(clusters, await readProbes(opts.probes, clusters));
  const mismatches = results.filter(
    (r) => r.expect !== undefined && r.allowed !== (r.expect === 'allow'),
  );
  if (opts.json)
    process.stdout.write(`${JSON.stringify({ apiVersion: 'meshplane/v1', results })}\n`);
  else {
    for (const r of results) {
      const verdict = r.allowed === null ? 'UNKNOWN' : r.allowed ? 'ALLOWED' : 'DENIED';
      const miss = mismatches.includes(r) ? `  (expected ${r.expect})` : '';
      process.stdout.write(
        `${verdict.padEnd(8)} ${r.from} → ${r.to}:${r.port}/${r.protocol}  ${r.reason}${miss}\n`,
      );
    }
  }
  if (mismatches.length > 0)
    throw new CliExit(EXIT.failed, `${mismatches.length} probe(s) did not match their expect`);
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('offline: compile the policies of a manifest folder and answer probes')
    .requiredOption('--manifests <dir>', 'manifest folder (same format as --clusters)')
    .requiredOption('--probes <file>', 'probes file (YAML or JSON)')
    .option('--json', 'one JSON document on stdout')
    .action(simulate);
}
