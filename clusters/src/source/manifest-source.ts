import { join, resolve } from 'node:path';
import type { NatsConnection } from 'nats';
import type {
  ChangeSetEvent,
  Clock,
  Logger,
  Result,
  SourceApplyReply,
  SourceApplyRequest,
  ValidationIssue,
} from '../../../common/index.js';
import { MeshError, formatIssue, jsonLogger, systemClock } from '../../../common/index.js';
import type { PreviousPlacements } from '../manifests/index.js';
import type { LoadedCluster } from '../manifests/index.js';
import {
  CLUSTER_FILE,
  ClusterFolderLoader,
  podKey,
  podPlacements,
  readClusterSpec,
} from '../manifests/index.js';
import type { ClusterState } from './change-set.js';
import { clusterState, patchClusterState } from './change-set.js';
import type { EventSink } from './event-sink.js';
import type { FolderApplyResult } from './folder-apply.js';
import { applyToFolder } from './folder-apply.js';
import { natsEventSink } from './event-sink.js';
import type { WatchFolder } from './folder-watcher.js';
import { SettledChanges, watchFolderRecursive } from './folder-watcher.js';
import { HealthReporter } from './health.js';
import { ChangeSetPublisher } from './publisher.js';
import type { Backoff, Timers } from './timers.js';
import { systemTimers } from './timers.js';

export interface ManifestSourceOptions {
  /** the cluster's folder (cluster.yaml and manifests) */
  dir: string;
  /** owned by the caller, who closes it after stop(); required unless `sink` is given */
  nc?: NatsConnection | undefined;
  /** replaces the node list with `<cluster>-1..N` */
  nodesPerCluster?: number | undefined;
  /** quiet time after a file event before reloading; default 150 ms */
  debounceMs?: number | undefined;
  /** default 2 s */
  healthIntervalMs?: number | undefined;
  /** aborting it stops the source, like stop() */
  signal?: AbortSignal | undefined;
  clock?: Clock | undefined;
  timers?: Timers | undefined;
  backoff?: Backoff | undefined;
  logger?: Logger | undefined;
  /** replaces the NATS adapter built from `nc` (tests) */
  sink?: EventSink | undefined;
  watchFolder?: WatchFolder | undefined;
  /** called after each acknowledged change set (telemetry, "ready" lines) */
  onPublished?: ((event: ChangeSetEvent, seq: number) => void) | undefined;
  /** called when a load of the folder is refused, with every error */
  onRefused?: ((errors: readonly ValidationIssue[]) => void) | undefined;
}

export type StartResult =
  | { status: 'published'; cluster: string; seq: number }
  /** `cluster`: as far as known (cluster.yaml may be what is invalid) */
  | { status: 'invalid'; cluster: string | undefined; errors: ValidationIssue[] }
  | { status: 'stopped' };

/**
 * A cluster source backed by a manifest folder: publishes the folder as a
 * full change set when it starts, then one change set with the differences
 * per save. An invalid folder publishes nothing (the mesh keeps the last good
 * state) and is reported on stderr and in health. Stopping is not removing:
 * stop() leaves everything published in place. Not reusable after stop().
 */
export class ManifestSource {
  readonly #opts: ManifestSourceOptions;
  readonly #dir: string;
  readonly #timers: Timers;
  readonly #logger: Logger;
  readonly #stopper = new AbortController();
  readonly #signal: AbortSignal;
  readonly #health: HealthReporter;
  readonly #publisher: ChangeSetPublisher;
  readonly #changes: SettledChanges;
  #identity: { name: string; id: number } | undefined;
  /** the name cluster.yaml gives while the folder has never loaded */
  #nameHint: string | undefined;
  #started = false;
  #reloading: Promise<ValidationIssue[]> | undefined;
  #reloadAgain = false;
  #firstPublish: ((result: StartResult) => void) | undefined;
  #lastWarnings = '';
  // Pods without a written node or IP keep what they got, as running pods do.
  #placements: PreviousPlacements | undefined;
  // Re-parses only changed files; unchanged objects keep their identity, so
  // #desired reuses their canonical text.
  readonly #loader: ClusterFolderLoader;
  #desired: ClusterState | undefined;
  /** the loader's load that #desired and #placements were built from */
  #desiredLoad: number | undefined;
  #unsubscribeResync: (() => void) | undefined;
  #unsubscribeApply: (() => void) | undefined;
  /** change sets to write before the next load, with whoever waits for their outcome */
  #pendingApplies: PendingApply[] = [];
  /** the publisher generation of the last desired state set */
  #generation = 0;
  readonly #sink: EventSink;

  constructor(opts: ManifestSourceOptions) {
    this.#opts = opts;
    this.#dir = opts.dir;
    this.#timers = opts.timers ?? systemTimers();
    this.#loader = new ClusterFolderLoader(opts.dir, { nodesPerCluster: opts.nodesPerCluster });
    const origin = `manifests:${resolve(opts.dir)}`;
    this.#logger = opts.logger ?? jsonLogger({ component: 'cluster-source', origin });
    this.#signal =
      opts.signal === undefined
        ? this.#stopper.signal
        : AbortSignal.any([opts.signal, this.#stopper.signal]);
    const sink = opts.sink ?? (opts.nc === undefined ? undefined : natsEventSink(opts.nc));
    if (sink === undefined) throw new MeshError('INTERNAL', 'ManifestSource needs `nc` or `sink`');
    this.#sink = sink;
    this.#health = new HealthReporter({
      sink,
      origin,
      clock: opts.clock ?? systemClock,
      timers: this.#timers,
      intervalMs: opts.healthIntervalMs ?? 2_000,
      logger: this.#logger,
    });
    this.#publisher = new ChangeSetPublisher({
      sink,
      origin,
      timers: this.#timers,
      backoff: opts.backoff ?? {},
      logger: this.#logger,
      signal: this.#signal,
      onPublished: (event, seq) => this.#published(event, seq),
      onRejected: (message) => this.#rejected(message),
    });
    this.#changes = new SettledChanges({
      dir: opts.dir,
      debounceMs: opts.debounceMs ?? 150,
      timers: this.#timers,
      logger: this.#logger,
      watchFolder: opts.watchFolder ?? watchFolderRecursive,
      onSettled: () => void this.#reloadSerialized(),
    });
  }

  /** The cluster this source publishes for, once a load succeeded. */
  get cluster(): string | undefined {
    return this.#identity?.name;
  }

  /** '' when the last load was good; otherwise every error, one per line. */
  get lastError(): string {
    return this.#health.lastError;
  }

  /**
   * Loads the folder, starts watching it and reporting health. Resolves after
   * the first change set was acknowledged (retrying NATS failures until
   * then), at once when the folder is invalid (it keeps watching), or when
   * stopped first.
   */
  async start(): Promise<StartResult> {
    if (this.#started) throw new MeshError('INTERNAL', 'ManifestSource.start() called twice');
    this.#started = true;
    if (this.#signal.aborted) {
      await this.stop();
      return { status: 'stopped' };
    }
    this.#opts.signal?.addEventListener('abort', () => void this.stop(), { once: true });
    const first = new Promise<StartResult>((done) => (this.#firstPublish = done));
    this.#changes.start();
    const errors = await this.#reloadSerialized();
    this.#health.start();
    if (this.#signal.aborted) return { status: 'stopped' };
    if (errors.length > 0) {
      return { status: 'invalid', cluster: this.#identity?.name ?? this.#nameHint, errors };
    }
    return first;
  }

  /** Stops watching, timers and retries. Publishes no deletes. Idempotent. */
  async stop(): Promise<void> {
    this.#stopper.abort(new Error('source stopped'));
    this.#unsubscribeResync?.();
    this.#unsubscribeApply?.();
    for (const pending of this.#pendingApplies.splice(0)) {
      pending.resolve(failed(this.#dir, 'the cluster source stopped'));
    }
    this.#changes.close();
    this.#health.stop();
    this.#firstPublish?.({ status: 'stopped' });
    await Promise.allSettled([this.#reloading, this.#publisher.settled()]);
  }

  #published(event: ChangeSetEvent, seq: number): void {
    this.#logger.info('published change set', {
      cluster: event.cluster.name,
      full: event.full,
      upserts: event.upserts.length,
      deletes: event.deletes.length,
      seq,
    });
    this.#firstPublish?.({ status: 'published', cluster: event.cluster.name, seq });
    this.#firstPublish = undefined;
    this.#opts.onPublished?.(event, seq);
  }

  /** A valid folder whose change set cannot be published as it is (too large). */
  #rejected(message: string): void {
    this.#logger.error('change set rejected', { error: message });
    this.#health.setError(message);
    const errors: ValidationIssue[] = [{ file: this.#dir, message, severity: 'error' }];
    this.#firstPublish?.({ status: 'invalid', cluster: this.#identity?.name, errors });
    this.#firstPublish = undefined;
  }

  /** One load at a time; a change during a load causes exactly one more. Resolves with the errors of its load. */
  async #reloadSerialized(): Promise<ValidationIssue[]> {
    if (this.#reloading !== undefined) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = this.#reload();
    try {
      return await this.#reloading;
    } finally {
      this.#reloading = undefined;
      if (this.#reloadAgain && !this.#signal.aborted) {
        this.#reloadAgain = false;
        void this.#reloadSerialized();
      }
    }
  }

  /**
   * Writes a change set (`meshctl apply` / `delete`) into the folder and
   * publishes it: validated as a whole against the folder, written all or
   * nothing, then loaded and published like a save. Resolves with the stream
   * sequence of the change set that carries it, or every error (nothing
   * written). Serialized with the folder's loads, so a save in between is
   * neither lost nor mixed in half. A dry run only validates. The change
   * set is published with the caller's `traceparent` (W3C), when given.
   */
  apply(request: SourceApplyRequest, traceparent?: string): Promise<SourceApplyReply> {
    if (request.dryRun) return this.#writeToFolder(request).then(replyOf);
    if (this.#signal.aborted)
      return Promise.resolve(failed(this.#dir, 'the cluster source stopped'));
    return new Promise((resolve) => {
      this.#pendingApplies.push({ request, resolve, traceparent });
      void this.#reloadSerialized();
    });
  }

  #writeToFolder(request: SourceApplyRequest): Promise<FolderApplyResult> {
    return applyToFolder(this.#dir, request, {
      nodesPerCluster: this.#opts.nodesPerCluster,
      previousPlacements: this.#placements,
      signal: this.#signal,
    }).catch((err: unknown) => ({
      ok: false as const,
      errors: [
        {
          file: this.#dir,
          message: `writing the change set failed: ${err instanceof Error ? err.message : String(err)}`,
          severity: 'error' as const,
        },
      ],
    }));
  }

  /** Writes pending change sets, loads the folder, and tells each change set's caller how it went. */
  async #reload(): Promise<ValidationIssue[]> {
    const written: { pending: PendingApply; result: FolderApplyResult & { ok: true } }[] = [];
    for (const pending of this.#pendingApplies.splice(0)) {
      const result = await this.#writeToFolder(pending.request);
      if (result.ok) written.push({ pending, result });
      else pending.resolve(result);
    }
    const errors = await this.#load(
      written.flatMap((w) => (w.pending.traceparent ? [w.pending.traceparent] : [])),
    );
    for (const { pending, result } of written) {
      if (errors.length > 0) {
        // Only a save racing the change set gets here: its own validation passed.
        pending.resolve({ ok: false, errors });
        continue;
      }
      this.#publisher.whenPublished(this.#generation).then(
        (published) =>
          pending.resolve({
            ok: true,
            objects: result.objects,
            ...(published.sequence === undefined ? {} : { sequence: published.sequence }),
            unchanged: result.unchanged,
          }),
        (err: unknown) =>
          pending.resolve(failed(this.#dir, err instanceof Error ? err.message : String(err))),
      );
    }
    return errors;
  }

  /** `traceparents`: of the change sets written into the folder for this load (see apply). */
  async #load(traceparents: readonly string[] = []): Promise<ValidationIssue[]> {
    let result: Result<LoadedCluster>;
    try {
      result = await this.#loader.load({
        previousPlacements: this.#placements,
        signal: this.#signal,
      });
    } catch (err) {
      if (this.#signal.aborted) return [];
      const message = `loading failed: ${err instanceof Error ? err.message : String(err)}`;
      return this.#refuse([{ file: this.#dir, message, severity: 'error' }]);
    }
    if (!result.ok) return this.#refuse(result.errors);
    const { spec, objects } = result.value;
    const identity = this.#identity;
    if (identity !== undefined && (identity.name !== spec.name || identity.id !== spec.id)) {
      const field = identity.name !== spec.name ? 'name' : 'id';
      const was = field === 'name' ? identity.name : identity.id;
      const now = field === 'name' ? spec.name : spec.id;
      return this.#refuse([
        {
          file: join(this.#dir, CLUSTER_FILE),
          object: `Cluster/${identity.name}`,
          field,
          message: `cluster ${field} changed from ${was} to ${now}; a running source cannot change its cluster's identity (remove the cluster and join it again)`,
          severity: 'error',
        },
      ]);
    }
    this.#identity = { name: spec.name, id: spec.id };
    this.#unsubscribeResync ??= this.#sink.onResyncRequest?.(spec.name, (traceparent) => {
      this.#logger.info('control plane asked for a full resync');
      this.#publisher.resync(traceparent ? [traceparent] : []);
    });
    this.#unsubscribeApply ??= this.#sink.onApplyRequest?.(spec.name, (request, traceparent) =>
      this.apply(request, traceparent),
    );
    this.#health.setCluster(spec.name);
    this.#logWarnings(result.warnings);
    this.#health.setError('');
    this.#generation = this.#publisher.setDesired(this.#setDesired(spec, objects), traceparents);
    return [];
  }

  /**
   * The state to publish and the placements the next load keeps: patched
   * with what the loader says changed since the load they were built from
   * (a save touching a few files of a large folder), else built from every
   * object.
   */
  #setDesired(spec: LoadedCluster['spec'], objects: LoadedCluster['objects']): ClusterState {
    const load = this.#loader.lastLoad;
    const changes = load?.changes;
    if (
      changes !== undefined &&
      changes.since === this.#desiredLoad &&
      this.#desired !== undefined &&
      this.#placements !== undefined
    ) {
      const placements = new Map(this.#placements);
      for (const key of changes.removed) {
        const before = this.#desired.objects.get(key)?.object;
        if (before?.kind === 'Pod') placements.delete(podKey(before));
      }
      for (const o of changes.upserted) {
        if (o.kind === 'Pod') placements.set(podKey(o), { node: o.node, ips: o.ips });
      }
      this.#placements = placements;
      this.#desired = patchClusterState(this.#desired, spec, changes.upserted, changes.removed);
    } else {
      this.#placements = podPlacements(objects);
      this.#desired = clusterState(spec, objects, this.#desired);
    }
    this.#desiredLoad = load?.id;
    return this.#desired;
  }

  async #refuse(errors: ValidationIssue[]): Promise<ValidationIssue[]> {
    for (const issue of errors)
      this.#logger.error('manifest folder refused', { error: formatIssue(issue) });
    if (this.#identity === undefined) {
      // Report health under the name cluster.yaml gives, if it can be read at all.
      const spec = await readClusterSpec(this.#dir, { signal: this.#signal }).catch(
        () => undefined,
      );
      this.#nameHint = spec?.ok === true ? spec.value.name : undefined;
      if (this.#nameHint !== undefined) this.#health.setCluster(this.#nameHint);
    }
    this.#health.setError(errors.map(formatIssue).join('\n'));
    this.#opts.onRefused?.(errors);
    return errors;
  }

  #logWarnings(warnings: readonly ValidationIssue[]): void {
    const text = warnings.map(formatIssue).join('\n');
    if (text === this.#lastWarnings) return;
    this.#lastWarnings = text;
    for (const issue of warnings)
      this.#logger.warn('manifest warning', { warning: formatIssue(issue) });
  }
}

interface PendingApply {
  request: SourceApplyRequest;
  resolve: (reply: SourceApplyReply) => void;
  traceparent: string | undefined;
}

function failed(dir: string, message: string): SourceApplyReply {
  return { ok: false, errors: [{ file: dir, message, severity: 'error' }] };
}

function replyOf(result: FolderApplyResult): SourceApplyReply {
  return result.ok ? { ok: true, objects: result.objects, unchanged: result.unchanged } : result;
}
