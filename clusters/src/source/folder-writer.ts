import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MeshError } from '../../../common/index.js';

export interface FileChange {
  /** the text the plan was made from; undefined: the file did not exist */
  readonly before: string | undefined;
  /** undefined: remove the file */
  readonly after: string | undefined;
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
}

async function currentText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Hidden (leading dot), so neither the folder loader nor the watcher takes it for a manifest. */
function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.meshplane-${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes several files of a folder as nearly at once as a file system
 * allows, and all or nothing: every new text goes to a hidden temporary file
 * first, then each is renamed over its target (atomic per file) and removed
 * files are unlinked. A file that no longer has the text the change was
 * planned from (someone saved it meanwhile) fails the whole write before
 * anything is touched (CONFLICT); a failure halfway puts back what was
 * already replaced. Temporary files never outlive the call.
 */
export async function writeFolderChanges(
  changes: ReadonlyMap<string, FileChange>,
  opts: { signal?: AbortSignal | undefined } = {},
): Promise<void> {
  for (const [path, change] of changes) {
    if ((await currentText(path)) !== change.before) {
      throw new MeshError(
        'CONFLICT',
        `${path} changed while the change set was being applied; nothing was written, try again`,
      );
    }
  }
  const temps = new Map<string, string>();
  const done: [string, FileChange][] = [];
  try {
    for (const [path, change] of changes) {
      opts.signal?.throwIfAborted();
      if (change.after === undefined) continue;
      await mkdir(dirname(path), { recursive: true });
      const temp = tempPath(path);
      temps.set(path, temp);
      await writeFile(temp, change.after, { encoding: 'utf8', flag: 'wx', signal: opts.signal });
    }
    opts.signal?.throwIfAborted();
    for (const [path, change] of changes) {
      const temp = temps.get(path);
      if (temp === undefined) await unlink(path).catch(ignoreMissing);
      else await rename(temp, path);
      temps.delete(path);
      done.push([path, change]);
    }
  } catch (err) {
    await restore(done);
    throw err;
  } finally {
    await Promise.all([...temps.values()].map((t) => rm(t, { force: true })));
  }
}

function ignoreMissing(err: unknown): void {
  if (errorCode(err) !== 'ENOENT') throw err;
}

/** Best effort: the files already replaced get their old text back (again via rename). */
async function restore(done: readonly [string, FileChange][]): Promise<void> {
  for (const [path, change] of [...done].reverse()) {
    try {
      if (change.before === undefined) {
        await unlink(path).catch(ignoreMissing);
      } else {
        const temp = tempPath(path);
        await writeFile(temp, change.before, 'utf8');
        await rename(temp, path);
      }
    } catch {
      // Nothing better to do: the caller reports the original failure.
    }
  }
}
