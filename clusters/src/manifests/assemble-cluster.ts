import type { ClusterSpec, MeshObject } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import type { PlacementOptions } from './cluster-checks.js';
import { checkClusterObjects } from './cluster-checks.js';
import type { Converted } from './convert.js';
import type { IssueList } from './issues.js';
import type { ObjectOrigin } from './origin.js';
import { reportAt, where } from './origin.js';
import type { ParsedFile } from './parse-file.js';

export interface ParsedCluster {
  /** sorted by object key */
  objects: MeshObject[];
  /** by object key */
  origins: Map<string, ObjectOrigin>;
}

/**
 * The folder-wide steps over files parsed one by one: replays each file's
 * issues and objects in path order (the first definition of a key wins, later
 * ones are duplicates), then the checks across objects and pod placement.
 * Cheap next to parsing, so incremental reloads run it over every file.
 */
export function assembleCluster(
  spec: ClusterSpec,
  files: readonly ParsedFile[],
  issues: IssueList,
  opts: PlacementOptions = {},
): ParsedCluster {
  const converted = new Map<string, Converted>();
  const origins = new Map<string, ObjectOrigin>();
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of sorted) {
    for (const entry of file.entries) {
      if ('issue' in entry) {
        issues.add(entry.issue);
        continue;
      }
      const { key, origin } = entry.object;
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
      converted.set(key, entry.object.converted);
      origins.set(key, origin);
    }
  }
  const checked = checkClusterObjects(spec, converted, origins, issues, opts);
  // Keys computed once: comparing objectKey() inside the sort costs more than the checks.
  const keyed = checked.map((object) => ({ key: objectKey(object), object }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { objects: keyed.map((k) => k.object), origins };
}
