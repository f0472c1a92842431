import { join, resolve, sep } from 'node:path';
import type { Result, ValidationIssue } from '../../../common/index.js';
import { parseObjectKey } from '../../../common/index.js';
import type { ObjectOrigin } from '../manifests/index.js';
import type { ChangeSetObject } from './change-set-files.js';
import { documentCount, editDocuments } from './yaml-segments.js';

/** A cluster folder as it is now. */
export interface FolderView {
  readonly dir: string;
  /** every manifest file's text, by path */
  readonly files: ReadonlyMap<string, string>;
  /** where each object (by object key) is written */
  readonly origins: ReadonlyMap<string, ObjectOrigin>;
}

export interface FolderEditPlan {
  /** the new text of each touched file; undefined: the file is removed */
  readonly texts: ReadonlyMap<string, string | undefined>;
  /** which change-set object each written document (`path#index`) holds, to report errors where the user wrote it */
  readonly written: ReadonlyMap<string, ChangeSetObject>;
}

export function documentLocation(path: string, document: number): string {
  return `${path}#${document}`;
}

/**
 * Where a new object goes: `<dir>/<namespace>/<kind>-<name>.yaml`, or
 * `<dir>/<kind>-<name>.yaml` when it is cluster-scoped. Names are DNS names
 * (validated before), so the path stays inside the folder; checked anyway.
 */
export function newObjectPath(dir: string, key: string): string {
  const ref = parseObjectKey(key);
  const file = `${ref.kind.toLowerCase()}-${ref.name}.yaml`;
  const path = ref.namespace === '' ? join(dir, file) : join(dir, ref.namespace, file);
  if (!resolve(path).startsWith(resolve(dir) + sep)) {
    throw new Error(`object ${key} would be written outside ${dir}`);
  }
  return path;
}

interface Edits {
  replace: Map<number, string>;
  remove: Set<number>;
  append: ChangeSetObject[];
}

/**
 * What writing a change set into a folder changes, file by file: an object
 * the folder has is replaced in place (its document; the file's other
 * documents keep their text), a new one gets a file of its own, a deleted
 * one loses its document (and the file, when nothing is left). An object
 * defined inside a List cannot be edited on its own and is refused, as is
 * deleting one the folder does not have. Pure.
 */
export function planFolderEdit(
  view: FolderView,
  mode: 'apply' | 'delete',
  objects: readonly ChangeSetObject[],
): Result<FolderEditPlan> {
  const errors: ValidationIssue[] = [];
  const edits = new Map<string, Edits>();
  const editsOf = (path: string): Edits => {
    let e = edits.get(path);
    if (e === undefined) {
      e = { replace: new Map(), remove: new Set(), append: [] };
      edits.set(path, e);
    }
    return e;
  };
  const written = new Map<string, ChangeSetObject>();
  const refuse = (o: ChangeSetObject, message: string): void => {
    errors.push({
      file: o.file,
      document: o.document,
      object: o.object,
      message,
      severity: 'error',
    });
  };
  for (const o of objects) {
    const origin = view.origins.get(o.key);
    if (origin === undefined) {
      if (mode === 'delete') refuse(o, `not found in the cluster's folder ${view.dir}`);
      else editsOf(newObjectPath(view.dir, o.key)).append.push(o);
      continue;
    }
    if (origin.path !== '') {
      refuse(
        o,
        `defined in ${origin.file} document ${origin.document} as ${origin.path} of a List; edit that file`,
      );
      continue;
    }
    if (mode === 'delete') {
      editsOf(origin.file).remove.add(origin.document);
    } else {
      editsOf(origin.file).replace.set(origin.document, o.body);
      written.set(documentLocation(origin.file, origin.document), o);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  const texts = new Map<string, string | undefined>();
  for (const [path, e] of edits) {
    const after = editDocuments(view.files.get(path), {
      replace: e.replace,
      remove: e.remove,
      append: e.append.map((o) => o.body),
    });
    texts.set(path, after);
    const first = documentCount(after) - e.append.length;
    e.append.forEach((o, k) => written.set(documentLocation(path, first + k), o));
  }
  return { ok: true, value: { texts, written }, warnings: [] };
}
