import type { ClusterSpec, MeshObject, Result } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import { checkClusterObjects } from './cluster-checks.js';
import type { Converted } from './convert.js';
import { convertDocument } from './convert.js';
import type { ManifestFile } from './documents.js';
import { splitDocuments } from './documents.js';
import { Field } from './field.js';
import { IssueList, ObjectIssues } from './issues.js';
import type { ObjectOrigin } from './origin.js';
import type { PreviousPlacements } from './placement.js';
import { reportAt, where } from './origin.js';

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

export interface ParsedCluster {
  /** sorted by object key */
  objects: MeshObject[];
  /** by object key */
  origins: Map<string, ObjectOrigin>;
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
  const converted = new Map<string, Converted>();
  const origins = new Map<string, ObjectOrigin>();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    for (const document of splitDocuments(file, issues)) {
      const objectIssues = new ObjectIssues(issues, { file: file.path, document: document.index });
      for (const item of convertDocument(new Field(objectIssues, document.value, ''), ctx)) {
        const key = objectKey(item.object);
        const origin: ObjectOrigin = {
          file: file.path,
          document: document.index,
          path: item.path,
          object: item.description,
          ...(item.pod === undefined ? {} : { ipSource: item.pod.ipSource }),
        };
        const first = origins.get(key);
        if (first !== undefined) {
          reportAt(
            issues,
            origin,
            'metadata.name',
            `duplicate object; first defined in ${where(first)}`,
          );
          continue;
        }
        converted.set(key, item);
        origins.set(key, origin);
      }
    }
  }
  const objects = checkClusterObjects(spec, converted, origins, issues, opts.previousPlacements);
  objects.sort((a, b) => (objectKey(a) < objectKey(b) ? -1 : 1));
  return { objects, origins };
}
