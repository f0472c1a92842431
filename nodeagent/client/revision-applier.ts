import type { Clock } from '../../common/index.js';
import type { ErrorDetail } from '../../proto/index.js';
import { DatapathError, translateDelta, type Datapath } from '../datapath/index.js';
import type { AssembledRevision } from './revision-assembler.js';
import { errorDetailOf } from './errors.js';
import { buildDelta } from './revision-delta.js';
import type { ResourceStore } from './resource-store.js';
import { RevisionKeyOwners } from './revision-key-owners.js';

export type ApplyOutcome =
  | { kind: 'applied'; revision: number; durationUs: number; digest: string }
  | {
      kind: 'rejected';
      revision: number;
      heldRevision: number;
      digest: string;
      error: DatapathError;
      detail: ErrorDetail;
    };

/**
 * Applies a whole revision: decode and check the parts, translate to entries,
 * apply to the datapath, and only then record the resources as held. Any
 * refusal leaves both the datapath and the store on the last good revision.
 * One apply at a time (the caller serializes).
 */
export class RevisionApplier {
  readonly #store: ResourceStore;
  readonly #datapath: Datapath;
  readonly #monotonic: Clock;
  #applied = 0;

  constructor(store: ResourceStore, datapath: Datapath, monotonic: Clock) {
    this.#store = store;
    this.#datapath = datapath;
    this.#monotonic = monotonic;
  }

  /** The revision whose state the datapath holds (0: none yet). */
  get appliedRevision(): number {
    return this.#applied;
  }

  /** Rejects only when `signal` aborts (nothing applied then); every other failure is a 'rejected' outcome. */
  async apply(rev: AssembledRevision, signal?: AbortSignal): Promise<ApplyOutcome> {
    const built = buildDelta(rev.parts, this.#store);
    if (!built.ok) return this.#rejected(rev, new DatapathError(built.rejections));
    const translated = translateDelta(
      built.delta,
      new RevisionKeyOwners(this.#store, this.#datapath),
    );
    if (!translated.ok) return this.#rejected(rev, new DatapathError(translated.rejections));
    try {
      await this.#datapath.apply(translated.change, signal === undefined ? {} : { signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      const error =
        err instanceof DatapathError
          ? err
          : new DatapathError(
              [
                {
                  code: 'INTERNAL',
                  message: `datapath apply failed: ${String(err)}`,
                  resourceNames: [],
                },
              ],
              { cause: err },
            );
      return this.#rejected(rev, error);
    }
    this.#store.commit(built.delta);
    this.#applied = rev.revision;
    // Receipt of the last part -> state in the datapath (digest read back included).
    const digest = this.#datapath.digest();
    const durationUs = Math.max(0, Math.round((this.#monotonic.now() - rev.receivedAt) * 1000));
    return { kind: 'applied', revision: rev.revision, durationUs, digest };
  }

  #rejected(rev: AssembledRevision, error: DatapathError): ApplyOutcome {
    return {
      kind: 'rejected',
      revision: rev.revision,
      heldRevision: this.#applied,
      // Read back, not assumed: what the datapath holds after the refusal.
      digest: this.#datapath.digest(),
      error,
      detail: errorDetailOf(error.rejections),
    };
  }
}
