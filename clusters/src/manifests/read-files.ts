import type { Dirent } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ValidationIssue } from '../../../common/index.js';
import { CLUSTER_FILE } from './cluster-spec.js';
import type { ManifestFile } from './documents.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * A file modified less than this long before it was looked at gets no stamp:
 * file times have a coarse granularity, so a second same-size write within
 * the same tick would keep the stamp while changing the content (git's
 * "racily clean" files). Such a file is read again on every load until it is
 * older than this.
 */
const RACY_MS = 2_000;

export interface ReadFilesOptions {
  signal?: AbortSignal | undefined;
  /**
   * The text already known for a file whose stamp is `stamp`, if any: the
   * file is then not read again (a folder of thousands of pods is mostly
   * files that did not change since the last load).
   */
  known?: ((path: string, stamp: string) => string | undefined) | undefined;
}

/** Hidden files and editor leftovers (`.x.swp`, `.#x`, `x~`) are never manifests. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || name.endsWith('~');
}

export function isManifestName(name: string): boolean {
  return !isIgnoredName(name) && MANIFEST_EXTENSIONS.has(extname(name).toLowerCase());
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads a cluster folder's manifest files (*.yaml, *.yml, *.json) recursively,
 * not descending into subfolders that are clusters of their own (they hold a
 * cluster.yaml) and leaving out the folder's own cluster.yaml. Paths are
 * `join(dir, relative)`, so messages name files the way the user named the
 * folder; the result is sorted by path. Unreadable files are issues; a file
 * that vanished while reading (an editor saving) is skipped.
 */
export async function readManifestFiles(
  dir: string,
  opts: ReadFilesOptions = {},
): Promise<{ files: ManifestFile[]; errors: ValidationIssue[] }> {
  const files: ManifestFile[] = [];
  const errors: ValidationIssue[] = [];
  const walk = async (folder: string, isRoot: boolean): Promise<void> => {
    opts.signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (err) {
      if (!isRoot && errorCode(err) === 'ENOENT') return;
      errors.push({
        file: folder,
        message: `cannot read folder: ${describe(err)}`,
        severity: 'error',
      });
      return;
    }
    if (!isRoot && entries.some((e) => e.name === CLUSTER_FILE && !e.isDirectory())) return;
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (isIgnoredName(entry.name)) continue;
      const path = join(folder, entry.name);
      const kind = await entryKind(entry, path);
      if (kind === 'dir') await walk(path, false);
      else if (
        kind === 'file' &&
        isManifestName(entry.name) &&
        !(isRoot && entry.name === CLUSTER_FILE)
      ) {
        try {
          files.push(await readOne(path, opts));
        } catch (err) {
          if (opts.signal?.aborted === true) throw err;
          if (errorCode(err) === 'ENOENT') continue;
          errors.push({
            file: path,
            message: `cannot read file: ${describe(err)}`,
            severity: 'error',
          });
        }
      }
    }
  };
  await walk(dir, true);
  return { files, errors };
}

async function readOne(path: string, opts: ReadFilesOptions): Promise<ManifestFile> {
  if (opts.known === undefined) {
    return { path, text: await readFile(path, { encoding: 'utf8', signal: opts.signal }) };
  }
  const seenAt = Date.now();
  const st = await stat(path, { bigint: true });
  const changedAt = Number(st.mtimeMs > st.ctimeMs ? st.mtimeMs : st.ctimeMs);
  const stamp =
    seenAt - changedAt > RACY_MS
      ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
      : undefined;
  const known = stamp === undefined ? undefined : opts.known(path, stamp);
  const text = known ?? (await readFile(path, { encoding: 'utf8', signal: opts.signal }));
  return stamp === undefined ? { path, text } : { path, text, stamp };
}

/** Symlinks to files are followed; symlinks to folders are not (they could loop). */
async function entryKind(entry: Dirent, path: string): Promise<'file' | 'dir' | 'other'> {
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    return (await stat(path)).isFile() ? 'file' : 'other';
  } catch {
    return 'other';
  }
}
