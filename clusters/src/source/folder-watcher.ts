import { watch } from 'node:fs';
import { basename, extname } from 'node:path';
import type { Logger } from '../../../common/index.js';
import type { Timers } from './timers.js';
import { backoffDelay } from './timers.js';

export interface FolderWatcher {
  close(): void;
}

/**
 * Watches a folder recursively and calls `onChange` with the changed path
 * (relative, or null when the platform does not say). `onError` is called when
 * the watch breaks (e.g. the folder was removed); the caller re-watches.
 * Throws when the folder cannot be watched at all.
 */
export type WatchFolder = (
  dir: string,
  onChange: (path: string | null) => void,
  onError: (err: unknown) => void,
) => FolderWatcher;

/** fs.watch with `recursive` (inotify on Linux since Node 19.1). */
export const watchFolderRecursive: WatchFolder = (dir, onChange, onError) => {
  const watcher = watch(dir, { recursive: true }, (_event, path) => onChange(path));
  watcher.on('error', onError);
  return { close: () => watcher.close() };
};

const RELEVANT_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Whether a change may alter what the folder loads to. Editors save by
 * writing a hidden temporary file and renaming it over the original, which
 * also reports the original's name; the temporary file is not interesting.
 * A name without extension may be a folder (removed, renamed), so it counts.
 */
export function isRelevantChange(path: string | null): boolean {
  if (path === null) return true;
  // Hidden folders (.git) are not read either.
  if (path.split(/[\\/]/).some((part) => part.startsWith('.'))) return false;
  const name = basename(path);
  if (name.endsWith('~')) return false;
  const ext = extname(name).toLowerCase();
  return ext === '' || RELEVANT_EXTENSIONS.has(ext);
}

export interface SettledChangesOptions {
  dir: string;
  debounceMs: number;
  timers: Timers;
  logger: Logger;
  watchFolder: WatchFolder;
  /** called once per burst of relevant changes, after `debounceMs` of quiet */
  onSettled: () => void;
}

/**
 * Turns a folder's file events into one call per save: a trailing debounce
 * over relevant changes. When the watch breaks it watches again with backoff
 * and reports a change, since changes may have been missed meanwhile.
 */
export class SettledChanges {
  readonly #opts: SettledChangesOptions;
  #watcher: FolderWatcher | undefined;
  #debounce: unknown;
  #rewatch: unknown;
  #failures = 0;
  #closed = false;

  constructor(opts: SettledChangesOptions) {
    this.#opts = opts;
  }

  start(): void {
    if (this.#closed) return;
    try {
      this.#watcher = this.#opts.watchFolder(
        this.#opts.dir,
        (path) => {
          if (isRelevantChange(path)) this.#changed();
        },
        (err) => this.#broke(err),
      );
      this.#failures = 0;
    } catch (err) {
      this.#broke(err);
    }
  }

  close(): void {
    this.#closed = true;
    this.#opts.timers.clearTimeout(this.#debounce);
    this.#opts.timers.clearTimeout(this.#rewatch);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #changed(): void {
    if (this.#closed) return;
    this.#opts.timers.clearTimeout(this.#debounce);
    this.#debounce = this.#opts.timers.setTimeout(() => {
      this.#debounce = undefined;
      if (!this.#closed) this.#opts.onSettled();
    }, this.#opts.debounceMs);
  }

  #broke(err: unknown): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#closed) return;
    const delay = backoffDelay({ initialMs: 500, maxMs: 10_000 }, this.#failures);
    this.#failures += 1;
    this.#opts.logger.warn('watching the folder failed; retrying', {
      error: err instanceof Error ? err.message : String(err),
      retryInMs: delay,
    });
    this.#opts.timers.clearTimeout(this.#rewatch);
    this.#rewatch = this.#opts.timers.setTimeout(() => {
      this.start();
      this.#changed();
    }, delay);
  }
}
