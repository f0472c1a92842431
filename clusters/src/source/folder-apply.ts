import type {
  AppliedObjectRef,
  MeshObject,
  SourceApplyRequest,
  ValidationIssue,
} from '../../../common/index.js';
import { formatIssue, objectKey } from '../../../common/index.js';
import type { ManifestFile, PreviousPlacements } from '../manifests/index.js';
import { loadClusterFolder, parseClusterDocuments, readManifestFiles } from '../manifests/index.js';
import { canonicalJson } from './canonical.js';
import { readChangeSetFiles } from './change-set-files.js';
import type { FolderEditPlan } from './folder-edit-plan.js';
import { documentLocation, planFolderEdit } from './folder-edit-plan.js';
import { writeFolderChanges } from './folder-writer.js';

export interface FolderApplyOptions {
  /** as the source loads the folder (`--nodes N`) */
  nodesPerCluster?: number | undefined;
  /** the source's current placements, so validation places pods as its next load will */
  previousPlacements?: PreviousPlacements | undefined;
  signal?: AbortSignal | undefined;
}

export type FolderApplyResult =
  | { ok: true; objects: AppliedObjectRef[]; unchanged: boolean }
  | { ok: false; errors: ValidationIssue[] };

/**
 * Writes a change set into a cluster folder, or nothing: the change set is
 * validated on its own (per-file rules, errors where the user wrote them),
 * then the folder as it would be afterwards is validated as a whole (the
 * same load a source does), and only a valid result is written — atomically
 * per file, all files or none (writeFolderChanges). A change set that would
 * change no object writes nothing. With `dryRun` nothing is ever written.
 */
export async function applyToFolder(
  dir: string,
  request: SourceApplyRequest,
  opts: FolderApplyOptions = {},
): Promise<FolderApplyResult> {
  const loadOpts = {
    nodesPerCluster: opts.nodesPerCluster,
    previousPlacements: opts.previousPlacements,
    signal: opts.signal,
  };
  const nodesOverridden = opts.nodesPerCluster !== undefined;
  const current = await loadClusterFolder(dir, loadOpts);
  if (!current.ok) {
    const message = `the cluster folder ${dir} is invalid as it is; fix it before applying changes`;
    return { ok: false, errors: [{ file: dir, message, severity: 'error' }, ...current.errors] };
  }
  const { spec, origins } = current.value;
  const changeSet = readChangeSetFiles(request.files, spec, { nodesOverridden });
  const read = await readManifestFiles(dir, { signal: opts.signal });
  if (read.errors.length > 0) return { ok: false, errors: read.errors };
  const files = new Map(read.files.map((f) => [f.path, f.text]));
  const plan = planFolderEdit({ dir, files, origins }, request.mode, changeSet.objects);
  if (!plan.ok) return { ok: false, errors: unique([...changeSet.errors, ...plan.errors]) };

  const after: ManifestFile[] = [];
  for (const [path, text] of files) {
    if (!plan.value.texts.has(path)) after.push({ path, text });
  }
  for (const [path, text] of plan.value.texts) if (text !== undefined) after.push({ path, text });
  after.sort((a, b) => (a.path < b.path ? -1 : 1));
  const result = parseClusterDocuments(spec, after, {
    nodesOverridden,
    previousPlacements: opts.previousPlacements,
  });
  if (!result.ok || changeSet.errors.length > 0) {
    const folderErrors = result.ok ? [] : result.errors.map((e) => locate(e, plan.value));
    return { ok: false, errors: unique([...changeSet.errors, ...folderErrors]) };
  }

  const objects = appliedObjects(
    request.mode,
    changeSet.objects,
    current.value.objects,
    result.value,
  );
  const unchanged = objects.every((o) => o.action === 'unchanged');
  if (!request.dryRun && !unchanged) {
    const changes = new Map(
      [...plan.value.texts].map(([path, text]) => [path, { before: files.get(path), after: text }]),
    );
    await writeFolderChanges(changes, { signal: opts.signal });
  }
  return { ok: true, objects, unchanged };
}

/** Each error once (a document's own error is found again by the folder-wide load). */
function unique(errors: readonly ValidationIssue[]): ValidationIssue[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const text = formatIssue(e);
    if (seen.has(text)) return false;
    seen.add(text);
    return true;
  });
}

/** An error about a document the change set wrote is reported where the user wrote it. */
function locate(issue: ValidationIssue, plan: FolderEditPlan): ValidationIssue {
  if (issue.file === undefined || issue.document === undefined) return issue;
  const source = plan.written.get(documentLocation(issue.file, issue.document));
  if (source === undefined) return issue;
  return { ...issue, file: source.file, document: source.document };
}

function appliedObjects(
  mode: 'apply' | 'delete',
  changeSet: readonly { key: string }[],
  before: readonly MeshObject[],
  after: readonly MeshObject[],
): AppliedObjectRef[] {
  if (mode === 'delete') return changeSet.map((o) => ({ key: o.key, action: 'deleted' }));
  const was = new Map(before.map((o) => [objectKey(o), o]));
  const now = new Map(after.map((o) => [objectKey(o), o]));
  return changeSet.map(({ key }) => {
    const old = was.get(key);
    const next = now.get(key);
    if (old === undefined) return { key, action: 'created' };
    const same = next !== undefined && canonicalJson(old) === canonicalJson(next);
    return { key, action: same ? 'unchanged' : 'configured' };
  });
}
