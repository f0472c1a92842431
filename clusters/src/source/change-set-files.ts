import { parseAllDocuments, stringify } from 'yaml';
import type { ChangeSetFile, ClusterSpec, ValidationIssue } from '../../../common/index.js';
import { parseManifestFile } from '../manifests/index.js';
import { documentBody, splitSegments } from './yaml-segments.js';

/** One object of a change set, with where the user wrote it and the text to write into the folder. */
export interface ChangeSetObject {
  /** Kind/namespace/name */
  readonly key: string;
  readonly file: string;
  readonly document: number;
  /** Kind/namespace/name as messages name it */
  readonly object: string;
  /** the YAML document to write (the user's own text, comments included; an item of a List on its own) */
  readonly body: string;
}

/**
 * Parses and validates a change set's files with the same per-file rules as
 * a manifest folder (every error names file, document, object and field),
 * for the cluster it goes to. Checks across objects that need the rest of
 * the folder (namespaces, references, pod IPs) are left to the folder-wide
 * validation of the result. An object written twice is an error. Returns
 * the objects that are valid on their own even when others are not, so the
 * folder-wide checks can still report their problems (every error at once). Pure.
 */
export function readChangeSetFiles(
  files: readonly ChangeSetFile[],
  cluster: ClusterSpec,
  opts: { nodesOverridden: boolean },
): { objects: ChangeSetObject[]; errors: ValidationIssue[] } {
  const errors: ValidationIssue[] = [];
  const objects: ChangeSetObject[] = [];
  const seen = new Map<string, ChangeSetObject>();
  for (const file of files) {
    const parsed = parseManifestFile(file, { cluster, nodesOverridden: opts.nodesOverridden });
    let split: ReturnType<typeof splitSegments> | undefined;
    let documents: ReturnType<typeof parseAllDocuments> | undefined;
    for (const entry of parsed.entries) {
      if ('issue' in entry) {
        if (entry.issue.severity === 'error') errors.push(entry.issue);
        continue;
      }
      const { key, origin } = entry.object;
      let body: string;
      if (origin.path === '') {
        split ??= splitSegments(file.text);
        const segment = split.segments[origin.document] ?? '';
        // The first document takes the file's header comment with it.
        body = (origin.document === 0 ? split.prefix : '') + documentBody(segment);
      } else {
        // An item of a List becomes a document of its own.
        documents ??= parseAllDocuments(file.text);
        const list = documents[origin.document]?.toJS() as { items?: unknown[] } | undefined;
        const index = Number(/^items\[(\d+)\]$/.exec(origin.path)?.[1]);
        body = stringify(list?.items?.[index]);
      }
      const object: ChangeSetObject = {
        key,
        file: file.path,
        document: origin.document,
        object: origin.object,
        body,
      };
      const before = seen.get(key);
      if (before !== undefined) {
        errors.push({
          file: file.path,
          document: origin.document,
          object: origin.object,
          message: `written twice in this change set (also ${before.file} document ${before.document})`,
          severity: 'error',
        });
        continue;
      }
      seen.set(key, object);
      objects.push(object);
    }
  }
  if (errors.length === 0 && objects.length === 0) {
    errors.push({ message: 'the change set has no objects', severity: 'error' });
  }
  return { objects, errors };
}
