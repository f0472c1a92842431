import type { Dirent } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterSpec, MeshObject, Result } from '../../../common/index.js';
import { CLUSTER_FILE, defaultClusterSpec, parseClusterSpec } from './cluster-spec.js';
import { IssueList } from './issues.js';
import { checkMesh } from './mesh-checks.js';
import type { ObjectOrigin } from './origin.js';
import type { ParsedCluster } from './assemble-cluster.js';
import type { ManifestFile } from './documents.js';
import type { ParseOptions } from './parse-cluster.js';
import { parseClusterObjects } from './parse-cluster.js';
import type { PreviousPlacements } from './placement.js';
import type { ReadFilesOptions } from './read-files.js';
import { readManifestFiles } from './read-files.js';

export interface LoadOptions {
  /** replaces every cluster's node list with `<cluster>-1..N` */
  nodesPerCluster?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface ClusterLoadOptions extends LoadOptions {
  /** see ParseOptions.previousPlacements */
  previousPlacements?: PreviousPlacements | undefined;
}

export interface LoadedCluster {
  spec: ClusterSpec;
  /** sorted by object key; owned by the caller */
  objects: MeshObject[];
  /** the cluster's folder, as given */
  dir: string;
  /** where each object (by object key) was written */
  origins: ReadonlyMap<string, ObjectOrigin>;
}

export interface LoadedMesh {
  dir: string;
  /** false when DIR itself is the (only) cluster */
  multiCluster: boolean;
  /** sorted by cluster name */
  clusters: LoadedCluster[];
}

const MAX_NODES_PER_CLUSTER = 65_535;

function checkNodesOption(opts: LoadOptions, issues: IssueList): boolean {
  const n = opts.nodesPerCluster;
  if (n === undefined || (Number.isInteger(n) && n >= 1 && n <= MAX_NODES_PER_CLUSTER)) return true;
  issues.add({
    field: '--nodes',
    message: `must be an integer 1..${MAX_NODES_PER_CLUSTER}, got ${String(n)}`,
    severity: 'error',
  });
  return false;
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
}

/** The folder's cluster.yaml, or the `default` cluster when there is none. */
export async function readClusterSpec(
  dir: string,
  opts: LoadOptions = {},
  parse: ParseSpec = parseClusterSpec,
): Promise<Result<ClusterSpec>> {
  const path = join(dir, CLUSTER_FILE);
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted === true) throw err;
    if (errorCode(err) === 'ENOENT')
      return { ok: true, value: defaultClusterSpec(opts), warnings: [] };
    const message = `cannot read: ${err instanceof Error ? err.message : String(err)}`;
    return { ok: false, errors: [{ file: path, message, severity: 'error' }] };
  }
  return parse({ path, text }, opts);
}

/** Parses a cluster.yaml's text; the default parses it afresh. */
export type ParseSpec = (file: ManifestFile, opts: LoadOptions) => Result<ClusterSpec>;

/** Turns a cluster's files into its objects; the default parses them all afresh. */
export type ParseCluster = (
  spec: ClusterSpec,
  files: readonly ManifestFile[],
  issues: IssueList,
  opts: ParseOptions,
) => ParsedCluster;

/** How a load turns files into a cluster; ClusterFolderLoader's caches replace the parts. */
export interface LoadSteps {
  parse: ParseCluster;
  parseSpec?: ParseSpec | undefined;
  /** see ReadFilesOptions.known */
  known?: ReadFilesOptions['known'];
}

async function loadCluster(
  dir: string,
  opts: ClusterLoadOptions,
  issues: IssueList,
  steps: LoadSteps = { parse: parseClusterObjects },
): Promise<LoadedCluster | undefined> {
  const parse = steps.parse;
  const spec = await readClusterSpec(dir, opts, steps.parseSpec);
  const read = await readManifestFiles(dir, { signal: opts.signal, known: steps.known });
  issues.addAll(read.errors);
  if (!spec.ok) {
    issues.addAll(spec.errors);
    return undefined;
  }
  issues.addAll(spec.warnings);
  const parsed = parse(spec.value, read.files, issues, {
    nodesOverridden: opts.nodesPerCluster !== undefined,
    previousPlacements: opts.previousPlacements,
  });
  return { spec: spec.value, objects: parsed.objects, dir, origins: parsed.origins };
}

/**
 * Loads one cluster folder: its cluster.yaml (or the `default` cluster) and
 * every manifest below it, except in subfolders that are clusters themselves.
 * Idempotent; reads only.
 */
export async function loadClusterFolder(
  dir: string,
  opts: ClusterLoadOptions = {},
): Promise<Result<LoadedCluster>> {
  return loadClusterFolderWith(dir, opts, { parse: parseClusterObjects });
}

/** loadClusterFolder with other steps (ClusterFolderLoader's caches). */
export async function loadClusterFolderWith(
  dir: string,
  opts: ClusterLoadOptions,
  steps: LoadSteps,
): Promise<Result<LoadedCluster>> {
  const issues = new IssueList();
  if (!checkNodesOption(opts, issues)) return { ok: false, errors: issues.errors };
  const cluster = await loadCluster(dir, opts, issues, steps);
  if (cluster === undefined || issues.hasErrors) return { ok: false, errors: issues.errors };
  return { ok: true, value: cluster, warnings: issues.warnings };
}

/** Direct subfolders of DIR holding a cluster.yaml, sorted. */
export async function findClusterFolders(
  dir: string,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return []; // loadClusterFolder reports the unreadable folder
  }
  const found: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    opts.signal?.throwIfAborted();
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const children = await readdir(join(dir, entry.name)).catch(() => [] as string[]);
    if (children.includes(CLUSTER_FILE)) found.push(join(dir, entry.name));
  }
  return found;
}

/**
 * Loads a mesh folder: DIR is multi-cluster when it has subfolders holding a
 * cluster.yaml (only those are clusters; other files and folders of DIR are
 * not read), otherwise DIR itself is one cluster. Checks across clusters:
 * names, ids and pod CIDRs do not clash, pod IPs are unique mesh-wide.
 */
export async function loadMeshFolder(
  dir: string,
  opts: LoadOptions = {},
): Promise<Result<LoadedMesh>> {
  const issues = new IssueList();
  if (!checkNodesOption(opts, issues)) return { ok: false, errors: issues.errors };
  const folders = await findClusterFolders(dir, opts);
  const multiCluster = folders.length > 0;
  const clusters: LoadedCluster[] = [];
  for (const folder of multiCluster ? folders : [dir]) {
    const cluster = await loadCluster(folder, opts, issues);
    if (cluster !== undefined) clusters.push(cluster);
  }
  checkMesh(clusters, issues);
  if (issues.hasErrors) return { ok: false, errors: issues.errors };
  clusters.sort((a, b) => (a.spec.name < b.spec.name ? -1 : 1));
  return { ok: true, value: { dir, multiCluster, clusters }, warnings: issues.warnings };
}
