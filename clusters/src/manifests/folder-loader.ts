import { createHash } from 'node:crypto';
import type { ClusterSpec, Result } from '../../../common/index.js';
import type { ParsedCluster } from './assemble-cluster.js';
import { assembleCluster } from './assemble-cluster.js';
import type { ManifestFile } from './documents.js';
import type { IssueList } from './issues.js';
import type { LoadedCluster, LoadOptions } from './load-folder.js';
import { loadClusterFolderWith } from './load-folder.js';
import type { ParseOptions } from './parse-cluster.js';
import type { ParsedFile } from './parse-file.js';
import { parseManifestFile } from './parse-file.js';
import type { PreviousPlacements } from './placement.js';
import { PlacedPodMemo } from './placement.js';

export interface FolderLoadOptions {
  /** see ParseOptions.previousPlacements */
  previousPlacements?: PreviousPlacements | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Loads one cluster folder again and again, as a watching source does, with
 * the same result as a fresh loadClusterFolder each time (errors included)
 * but re-parsing only files whose content changed: YAML parsing and
 * per-object validation are ~0.5 ms per pod, which made every save of a
 * 3,000-pod folder cost seconds. Files are still read on every load (cheap
 * next to parsing, and no watcher event can be missed that way); the
 * folder-wide steps (duplicates, namespaces, references, placement, pod IP
 * uniqueness) run over all cached results. Every cached result is dropped
 * when the cluster's spec or `--nodes` changes, since conversion depends on them.
 *
 * Objects and origins it returns are shared with its cache and with later
 * loads' results: callers must not mutate them. Unchanged objects keep their
 * identity from one load to the next (see ClusterState).
 */
export class ClusterFolderLoader {
  readonly #dir: string;
  readonly #nodesPerCluster: number | undefined;
  /** by file path */
  #files = new Map<string, { hash: string; parsed: ParsedFile }>();
  /** what the cached results were converted for */
  #context = '';
  readonly #placed = new PlacedPodMemo();
  #reused = 0;

  constructor(dir: string, opts: Pick<LoadOptions, 'nodesPerCluster'> = {}) {
    this.#dir = dir;
    this.#nodesPerCluster = opts.nodesPerCluster;
  }

  /** How many files the last load took from the cache instead of parsing them. */
  get reusedFiles(): number {
    return this.#reused;
  }

  async load(opts: FolderLoadOptions = {}): Promise<Result<LoadedCluster>> {
    const result = await loadClusterFolderWith(
      this.#dir,
      {
        nodesPerCluster: this.#nodesPerCluster,
        previousPlacements: opts.previousPlacements,
        signal: opts.signal,
      },
      (spec, files, issues, parseOpts) => this.#parse(spec, files, issues, parseOpts),
    );
    this.#placed.commit();
    return result;
  }

  #parse(
    spec: ClusterSpec,
    files: readonly ManifestFile[],
    issues: IssueList,
    opts: ParseOptions,
  ): ParsedCluster {
    const nodesOverridden = opts.nodesOverridden === true;
    const context = JSON.stringify([spec.name, spec.id, spec.nodes, spec.podCIDR, nodesOverridden]);
    if (context !== this.#context) this.#files.clear();
    this.#context = context;
    const ctx = { cluster: spec, nodesOverridden };
    const next = new Map<string, { hash: string; parsed: ParsedFile }>();
    this.#reused = 0;
    for (const file of files) {
      const hash = createHash('sha256').update(file.text).digest('hex');
      const cached = this.#files.get(file.path);
      if (cached?.hash === hash) this.#reused += 1;
      next.set(
        file.path,
        cached?.hash === hash ? cached : { hash, parsed: parseManifestFile(file, ctx) },
      );
    }
    // Files gone from the folder leave the cache with this swap.
    this.#files = next;
    const parsed = [...next.values()].map((f) => f.parsed);
    return assembleCluster(spec, parsed, issues, {
      previous: opts.previousPlacements,
      place: this.#placed.place,
    });
  }
}
