import { createHash } from 'node:crypto';
import type { AssemblyDelta, FileChange } from './assembled-folder.js';
import { AssembledFolder } from './assembled-folder.js';
import { parseClusterSpec } from './cluster-spec.js';
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

/** A successful load, numbered, and what changed since the previous successful one when the loader knows. */
export interface FolderLoad {
  readonly id: number;
  /** relative to the successful load numbered `since`; absent when the whole folder was assembled */
  readonly changes?: AssemblyDelta & { readonly since: number };
}

interface CachedFile {
  /** see ManifestFile.stamp; absent when the file is too new to trust one */
  stamp: string | undefined;
  text: string;
  hash: string;
  parsed: ParsedFile;
}

/**
 * Loads one cluster folder again and again, as a watching source does, with
 * the same result as a fresh loadClusterFolder each time (errors included)
 * but doing per save only what the changed files need:
 * - a file whose stamp (inode, size, change times; see readManifestFiles) is
 *   unchanged is not read again, and one whose content hash is unchanged is
 *   not parsed again (YAML parsing and per-object validation are ~0.5 ms per
 *   pod); cluster.yaml is parsed again only when its text changed;
 * - while the folder is clean, a save that only adds, changes or removes
 *   pods is patched into the last result (AssembledFolder) instead of
 *   re-running the folder-wide steps (duplicates, namespaces, references,
 *   placement, pod IP uniqueness) over every object; anything else runs them
 *   over all cached results, as a fresh load does.
 * Every cached result is dropped when the cluster's spec or `--nodes`
 * changes, since conversion depends on them.
 *
 * Objects and origins it returns are shared with its cache and with later
 * loads' results: callers must not mutate them. Unchanged objects keep their
 * identity from one load to the next (see ClusterState).
 */
export class ClusterFolderLoader {
  readonly #dir: string;
  readonly #nodesPerCluster: number | undefined;
  /** by file path */
  #files = new Map<string, CachedFile>();
  /** what the cached results were converted for */
  #context = '';
  readonly #placed = new PlacedPodMemo();
  #spec: { text: string; result: Result<ClusterSpec> } | undefined;
  #assembled: AssembledFolder | undefined;
  #reused = 0;
  #loads = 0;
  #last: FolderLoad | undefined;
  /** set by #parse: the patch it applied, undefined when it assembled everything */
  #delta: AssemblyDelta | undefined;

  constructor(dir: string, opts: Pick<LoadOptions, 'nodesPerCluster'> = {}) {
    this.#dir = dir;
    this.#nodesPerCluster = opts.nodesPerCluster;
  }

  /** How many files the last load took from the cache instead of parsing them. */
  get reusedFiles(): number {
    return this.#reused;
  }

  /** The last load, if it succeeded. */
  get lastLoad(): FolderLoad | undefined {
    return this.#last;
  }

  async load(opts: FolderLoadOptions = {}): Promise<Result<LoadedCluster>> {
    const since = this.#last?.id;
    this.#last = undefined;
    this.#delta = undefined;
    let result: Result<LoadedCluster>;
    try {
      result = await loadClusterFolderWith(
        this.#dir,
        {
          nodesPerCluster: this.#nodesPerCluster,
          previousPlacements: opts.previousPlacements,
          signal: opts.signal,
        },
        {
          parse: (spec, files, issues, parseOpts) => this.#parse(spec, files, issues, parseOpts),
          parseSpec: (file, specOpts) => this.#parseSpec(file, specOpts),
          known: (path, stamp) => {
            const cached = this.#files.get(path);
            return cached?.stamp === stamp ? cached.text : undefined;
          },
        },
      );
    } catch (err) {
      this.#assembled = undefined;
      throw err;
    }
    if ((this.#delta as AssemblyDelta | undefined) === undefined) this.#placed.commit();
    if (!result.ok) {
      // A patch is relative to a good load; the next one starts over.
      this.#assembled = undefined;
      return result;
    }
    this.#loads += 1;
    const delta = this.#delta as AssemblyDelta | undefined;
    this.#last =
      delta !== undefined && since !== undefined
        ? { id: this.#loads, changes: { ...delta, since } }
        : { id: this.#loads };
    return result;
  }

  #parseSpec(file: ManifestFile, opts: LoadOptions): Result<ClusterSpec> {
    if (this.#spec?.text !== file.text) {
      this.#spec = { text: file.text, result: parseClusterSpec(file, opts) };
    }
    return this.#spec.result;
  }

  #parse(
    spec: ClusterSpec,
    files: readonly ManifestFile[],
    issues: IssueList,
    opts: ParseOptions,
  ): ParsedCluster {
    const nodesOverridden = opts.nodesOverridden === true;
    const context = JSON.stringify([spec.name, spec.id, spec.nodes, spec.podCIDR, nodesOverridden]);
    if (context !== this.#context) {
      this.#files.clear();
      this.#assembled = undefined;
    }
    this.#context = context;
    const ctx = { cluster: spec, nodesOverridden };
    const next = new Map<string, CachedFile>();
    const changes: FileChange[] = [];
    this.#reused = 0;
    for (const file of files) {
      const cached = this.#files.get(file.path);
      // Text from the cache (stamp unchanged) is the very same string.
      const hash =
        cached !== undefined && cached.text === file.text
          ? cached.hash
          : createHash('sha256').update(file.text).digest('hex');
      if (cached?.hash === hash) {
        this.#reused += 1;
        next.set(file.path, { ...cached, stamp: file.stamp, text: file.text });
        continue;
      }
      const parsed = parseManifestFile(file, ctx);
      next.set(file.path, { stamp: file.stamp, text: file.text, hash, parsed });
      changes.push({ before: cached?.parsed, after: parsed });
    }
    for (const [path, cached] of this.#files) {
      if (!next.has(path)) changes.push({ before: cached.parsed, after: undefined });
    }
    // Files gone from the folder leave the cache with this swap.
    this.#files = next;
    const clean = issues.errors.length === 0 && issues.warnings.length === 0;
    const patched = clean ? this.#assembled?.apply(changes) : undefined;
    if (patched !== undefined) {
      this.#delta = patched.delta;
      return patched.cluster;
    }
    const parsed = [...next.values()].map((f) => f.parsed);
    const cluster = assembleCluster(spec, parsed, issues, {
      previous: opts.previousPlacements,
      place: this.#placed.place,
    });
    // Every issue counts (cluster.yaml's and unreadable files' too): a patch only follows a clean folder.
    const reported = issues.errors.length + issues.warnings.length;
    this.#assembled = AssembledFolder.of(spec, parsed, cluster, reported);
    return cluster;
  }
}
