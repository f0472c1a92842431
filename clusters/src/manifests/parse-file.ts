import type { ValidationIssue } from '../../../common/index.js';
import { objectKey } from '../../../common/index.js';
import type { Converted } from './convert.js';
import { convertDocument } from './convert.js';
import type { ManifestFile } from './documents.js';
import { splitDocuments } from './documents.js';
import { Field } from './field.js';
import type { IssueSink } from './issues.js';
import { ObjectIssues } from './issues.js';
import type { ObjectOrigin } from './origin.js';
import type { PodContext } from './pod.js';

/** An object a file defines, keyed, with where it was written. */
export interface FileObject {
  readonly key: string;
  readonly converted: Converted;
  readonly origin: ObjectOrigin;
}

/**
 * What one file contributes to its cluster, in the order a whole-folder load
 * meets it: each issue, and each object at the point its duplicate check
 * runs. Replaying the entries in file order reproduces a fresh load exactly,
 * messages and their order included, so a file's result can be cached while
 * its content and the cluster's spec stay the same.
 */
export interface ParsedFile {
  readonly path: string;
  readonly entries: readonly ({ issue: ValidationIssue } | { object: FileObject })[];
}

/**
 * Parses, converts and validates one manifest file on its own: everything
 * that depends only on its text and the cluster (name, nodes, `--nodes`).
 * Pure; checks across files are left to assembleCluster.
 */
export function parseManifestFile(file: ManifestFile, ctx: PodContext): ParsedFile {
  const entries: ({ issue: ValidationIssue } | { object: FileObject })[] = [];
  const sink: IssueSink = { add: (issue) => entries.push({ issue }) };
  for (const document of splitDocuments(file, sink)) {
    const objectIssues = new ObjectIssues(sink, { file: file.path, document: document.index });
    for (const item of convertDocument(new Field(objectIssues, document.value, ''), ctx)) {
      const origin: ObjectOrigin = {
        file: file.path,
        document: document.index,
        path: item.path,
        object: item.description,
        ...(item.pod === undefined ? {} : { ipSource: item.pod.ipSource }),
      };
      entries.push({ object: { key: objectKey(item.object), converted: item, origin } });
    }
  }
  return { path: file.path, entries };
}
