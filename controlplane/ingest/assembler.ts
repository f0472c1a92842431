import { joinChangeSetParts, type ChangeSetEvent } from '../../common/index.js';

/** One validated message of the events stream: a whole change set, or one part of one. */
export interface ArrivedPart {
  cluster: string;
  /** stream sequence */
  seq: number;
  /** the change set's id; undefined for a message that is a whole change set on its own */
  changeSet: string | undefined;
  /** 1-based; 1 of 1 for a whole change set */
  index: number;
  count: number;
  event: ChangeSetEvent;
}

/** A change set whose every part has arrived. */
export interface AssembledChangeSet {
  cluster: string;
  event: ChangeSetEvent;
  /** the stream sequence of its last part: the cluster's position once it is committed */
  seq: number;
  /** the stream sequences of its parts */
  seqs: number[];
}

/** A change set of which only some parts arrived before the cluster's next change set. */
export interface AbandonedChangeSet {
  cluster: string;
  changeSet: string;
  seqs: number[];
  count: number;
}

interface Pending {
  changeSet: string;
  count: number;
  parts: Map<number, ArrivedPart>;
  /** a part was refused: the rest of this change set is refused as it arrives, never committed */
  refused: boolean;
}

/**
 * Puts change sets back together from their per-kind parts, in stream
 * order, per cluster: a change set is released only when all its parts have
 * arrived (in any order), so a partial one never commits half. A cluster's
 * change sets are published one after another, so a part of another change
 * set (or a whole change set) means the one pending will never complete (its
 * publisher gave up on it and published newer content): it is dropped.
 * Parts received twice (a redelivery) count once. Pure; one per consumer,
 * kept across batches.
 */
export class ChangeSetAssembler {
  readonly #pending = new Map<string, Pending>();

  /**
   * Takes one message. Returns the change set it completes, if any, and the
   * change set it made hopeless, if any; `refused: true` when it belongs to
   * a change set a part of which was refused (refuse it too).
   */
  add(part: ArrivedPart): {
    complete?: AssembledChangeSet;
    abandoned?: AbandonedChangeSet;
    refused?: true;
  } {
    const current = this.#pending.get(part.cluster);
    let abandoned: AbandonedChangeSet | undefined;
    if (current && (part.changeSet === undefined || current.changeSet !== part.changeSet)) {
      this.#pending.delete(part.cluster);
      if (!current.refused) abandoned = this.#abandon(part.cluster, current);
    }
    const out = abandoned ? { abandoned } : {};
    if (part.changeSet === undefined || part.count === 1) {
      return { ...out, complete: assembled(part.cluster, [part]) };
    }
    let pending = this.#pending.get(part.cluster);
    if (!pending) {
      pending = { changeSet: part.changeSet, count: part.count, parts: new Map(), refused: false };
      this.#pending.set(part.cluster, pending);
    }
    if (pending.refused) return { ...out, refused: true };
    if (pending.count !== part.count) {
      // Parts of one change set disagree on how many there are: refuse it.
      pending.refused = true;
      return { ...out, refused: true };
    }
    pending.parts.set(part.index, part);
    if (pending.parts.size < pending.count) return out;
    this.#pending.delete(part.cluster);
    const parts = [...pending.parts.values()];
    // The parts of one change set share its cluster record and `full`; any disagreement refuses it.
    const first = parts[0]!.event;
    const agree = parts.every(
      (p) =>
        p.event.full === first.full &&
        JSON.stringify(p.event.cluster) === JSON.stringify(first.cluster),
    );
    if (!agree) return { ...out, refused: true };
    return { ...out, complete: assembled(part.cluster, parts) };
  }

  /**
   * A part of this cluster's change set `changeSet` was refused (malformed):
   * the parts that came before it are dropped and those that follow are
   * refused too (`add` says so).
   */
  refuse(cluster: string, changeSet: string | undefined): AbandonedChangeSet | undefined {
    const current = this.#pending.get(cluster);
    let abandoned: AbandonedChangeSet | undefined;
    if (current && current.changeSet !== changeSet && !current.refused)
      abandoned = this.#abandon(cluster, current);
    if (changeSet === undefined) this.#pending.delete(cluster);
    else this.#pending.set(cluster, { changeSet, count: 0, parts: new Map(), refused: true });
    return abandoned;
  }

  /** Clusters with a change set waiting for parts (for status and tests). */
  waiting(): { cluster: string; changeSet: string; have: number; count: number }[] {
    return [...this.#pending]
      .filter(([, p]) => !p.refused)
      .map(([cluster, p]) => ({
        cluster,
        changeSet: p.changeSet,
        have: p.parts.size,
        count: p.count,
      }));
  }

  #abandon(cluster: string, p: Pending): AbandonedChangeSet {
    return {
      cluster,
      changeSet: p.changeSet,
      seqs: [...p.parts.values()].map((x) => x.seq).sort((a, b) => a - b),
      count: p.count,
    };
  }
}

function assembled(cluster: string, parts: ArrivedPart[]): AssembledChangeSet {
  const seqs = parts.map((p) => p.seq).sort((a, b) => a - b);
  return {
    cluster,
    event: joinChangeSetParts(parts),
    seq: seqs.at(-1)!,
    seqs,
  };
}
