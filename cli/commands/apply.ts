import { readFile, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ChangeSetFile } from '../../common/index.js';
import { formatIssue } from '../../common/index.js';
import { readManifestFiles } from '../../clusters/src/index.js';
import type { AppliedObject, ApplyIssue, ApplyResponse } from '../../proto/index.js';
import { traceIdOf, tracedCommand, type CliTelemetry } from '../call-tracing.js';
import { applyChangeSet } from '../change-set-client.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { meshTarget } from '../state-dir.js';
import { meshOptions, printJson, type MeshOptions } from './common-options.js';

interface ChangeSetOptions extends MeshOptions {
  filename: string[];
  cluster: string[];
  allClusters?: boolean;
  timeout: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

function parseTimeout(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  const ms = m === null ? NaN : Math.round(Number(m[1]) * UNITS[m[2]!]!);
  if (!(ms >= 1 && ms <= 2 ** 32 - 1)) {
    throw new CliExit(EXIT.usage, `--timeout must be a duration such as 30s or 2m, got ${text}`);
  }
  return ms;
}

/** The change set's files: each FILE as it is, each DIR's manifests (recursively), named as the user named them. */
async function readChangeSet(paths: readonly string[]): Promise<ChangeSetFile[]> {
  const files: ChangeSetFile[] = [];
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (err) {
      throw new CliExit(
        EXIT.usage,
        `-f ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (!isDir) {
      files.push({ path, text: await readFile(path, 'utf8') });
      continue;
    }
    const read = await readManifestFiles(path);
    if (read.errors.length > 0) {
      throw new CliExit(EXIT.usage, read.errors.map(formatIssue).join('\n'));
    }
    if (read.files.length === 0) {
      throw new CliExit(EXIT.usage, `-f ${path}: no *.yaml, *.yml or *.json files in it`);
    }
    files.push(...read.files);
  }
  return files;
}

function issueText(e: ApplyIssue): string {
  const text = formatIssue({
    ...(e.file ? { file: e.file } : {}),
    ...(e.document >= 0 ? { document: e.document } : {}),
    ...(e.object ? { object: e.object } : {}),
    ...(e.field ? { field: e.field } : {}),
    message: e.message,
    severity: 'error',
  });
  return e.cluster ? `cluster ${e.cluster}: ${text}` : text;
}

function objectRef(o: AppliedObject): string {
  return `${o.kind}/${o.namespace ? `${o.namespace}/` : ''}${o.name}`;
}

function report(
  r: ApplyResponse,
  opts: ChangeSetOptions,
  verb: string,
  traceId: string | undefined,
): void {
  if (r.errors.length > 0) {
    if (opts.json) {
      printJson({
        errors: r.errors.map((e) => ({
          ...(e.cluster ? { cluster: e.cluster } : {}),
          file: e.file || null,
          document: e.document >= 0 ? e.document : null,
          object: e.object || null,
          field: e.field || null,
          message: e.message,
        })),
      });
    } else {
      for (const e of r.errors) process.stderr.write(`error: ${issueText(e)}\n`);
    }
    throw new CliExit(
      EXIT.usage,
      `${r.errors.length} error(s); the change set was not ${verb} and the mesh keeps its state`,
    );
  }
  if (opts.json) {
    printJson({
      revision: r.revision,
      changeSet: r.changeSetId,
      // the trace of the revision's span and of every node's apply (README: Traces)
      traceId: traceId ?? null,
      clusters: r.clusters,
      objects: r.objects.map((o) => ({
        cluster: o.cluster,
        kind: o.kind,
        namespace: o.namespace,
        name: o.name,
        action: o.action,
      })),
    });
    return;
  }
  const lines = r.objects.map((o) => `${o.cluster}: ${objectRef(o)} ${o.action}`);
  lines.push(
    `${verb} at revision ${r.revision} (change set ${r.changeSetId}${traceId ? `, trace ${traceId}` : ''})`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

function changeSetCommand(
  cmd: Command,
  mode: 'apply' | 'delete',
  telemetry: CliTelemetry,
): Command {
  const verb = mode === 'apply' ? 'applied' : 'deleted';
  return meshOptions(cmd)
    .requiredOption(
      '-f, --filename <file|dir>',
      'manifest file or folder (repeatable)',
      collect,
      [],
    )
    .option(
      '--cluster <name>',
      'target cluster (repeatable; may be omitted when there is one)',
      collect,
      [],
    )
    .option('--all-clusters', 'every member cluster (a mesh-wide policy)')
    .option('--timeout <duration>', 'how long to wait for the commit', '30s')
    .action(async (opts: ChangeSetOptions) => {
      if (opts.allClusters && opts.cluster.length > 0) {
        throw new CliExit(EXIT.usage, '--cluster and --all-clusters exclude each other');
      }
      const timeoutMs = parseTimeout(opts.timeout);
      const files = await readChangeSet(opts.filename);
      const target = await meshTarget(opts);
      await tracedCommand(
        telemetry,
        `meshctl ${mode}`,
        {
          'meshplane.clusters': opts.allClusters ? ['*'] : opts.cluster,
          'meshplane.files': files.length,
        },
        async (metadata, span) => {
          const r = await applyChangeSet(
            target,
            {
              clusters: opts.cluster,
              allClusters: opts.allClusters === true,
              files,
              delete: mode === 'delete',
              timeoutMs,
            },
            { metadata },
          );
          span.setAttribute('meshplane.revision', r.revision);
          report(r, opts, verb, traceIdOf(span));
        },
      );
    });
}

export function registerApply(program: Command, telemetry: CliTelemetry): void {
  changeSetCommand(
    program
      .command('apply')
      .description(
        'apply a change set: validated as a whole, written into the cluster folder, committed in one transaction, or not at all',
      ),
    'apply',
    telemetry,
  );
  changeSetCommand(
    program.command('delete').description('remove the objects the files name, as one change set'),
    'delete',
    telemetry,
  );
}
