import type { ClusterSpec, MeshObject, Result } from '../../../common/index.js';
import type { ParsedCluster } from './assemble-cluster.js';
import { assembleCluster } from './assemble-cluster.js';
import type { ManifestFile } from './documents.js';
import { IssueList } from './issues.js';
import { parseManifestFile } from './parse-file.js';
import type { PreviousPlacements } from './placement.js';

export interface ParseOptions {
  /** `--nodes N` replaced the node list: stale nodeNames are placed round-robin (warning) */
  nodesOverridden?: boolean | undefined;
  /**
   * Nodes and addresses an earlier load gave pods that have none written, by
   * `namespace/name`: kept while still valid, so an edit elsewhere does not
   * move or renumber running pods. Without it placement starts afresh.
   */
  previousPlacements?: PreviousPlacements | undefined;
}

/**
 * Converts a cluster's manifest files into its mesh objects: pure (no I/O),
 * deterministic whatever the order of files, and reporting every error of
 * every file at once.
 */
export function parseClusterDocuments(
  spec: ClusterSpec,
  files: readonly ManifestFile[],
  opts: ParseOptions = {},
): Result<MeshObject[]> {
  const issues = new IssueList();
  const parsed = parseClusterObjects(spec, files, issues, opts);
  if (issues.hasErrors) return { ok: false, errors: issues.errors };
  return { ok: true, value: parsed.objects, warnings: issues.warnings };
}

/** parseClusterDocuments that also returns origins and adds issues to the caller's list. */
export function parseClusterObjects(
  spec: ClusterSpec,
  files: readonly ManifestFile[],
  issues: IssueList,
  opts: ParseOptions = {},
): ParsedCluster {
  const ctx = { cluster: spec, nodesOverridden: opts.nodesOverridden === true };
  const parsed = files.map((file) => parseManifestFile(file, ctx));
  return assembleCluster(spec, parsed, issues, { previous: opts.previousPlacements });
}
