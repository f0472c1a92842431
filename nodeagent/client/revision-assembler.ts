import { MeshError } from '../../common/index.js';
import type { DeltaDiscoveryResponse } from '../../proto/index.js';

/** All parts of one mesh revision, ready to apply as one unit. */
export interface AssembledRevision {
  readonly revision: number;
  /** nonce of the completing part: the one the ACK/NACK answers */
  readonly nonce: string;
  readonly parts: readonly DeltaDiscoveryResponse[];
  /** monotonic ms when the completing part was received */
  readonly receivedAt: number;
}

/**
 * Collects the parts of a revision until the one marked complete. One per
 * stream: a broken stream takes its partial revision with it.
 */
export class RevisionAssembler {
  #revision: number | undefined;
  #parts: DeltaDiscoveryResponse[] = [];

  /** Returns the whole revision when `part` completes it. */
  push(part: DeltaDiscoveryResponse, receivedAt: number): AssembledRevision | undefined {
    if (this.#revision !== undefined && part.meshRevision !== this.#revision) {
      // The control plane keeps one revision in flight, so this is a bug on
      // its side; the caller ends the stream and resyncs on reconnect.
      throw new MeshError(
        'INTERNAL',
        `part of revision ${part.meshRevision} (nonce ${part.nonce}) arrived before revision ${this.#revision} was complete`,
      );
    }
    this.#revision = part.meshRevision;
    this.#parts.push(part);
    if (!part.revisionComplete) return undefined;
    const done: AssembledRevision = {
      revision: part.meshRevision,
      nonce: part.nonce,
      parts: this.#parts,
      receivedAt,
    };
    this.#revision = undefined;
    this.#parts = [];
    return done;
  }

  /** parts received of an incomplete revision */
  get pending(): number {
    return this.#parts.length;
  }
}
