/**
 * Which identities the garbage collector may delete now, and which marks to
 * set or clear. Pure: the caller passes the time and the facts.
 */
export interface GcCandidate {
  id: number;
  cluster: string;
  /** endpoints holding it now */
  references: number;
  /** when it was first seen unused; undefined = not marked */
  unusedSince: number | undefined;
}

export interface GcPlan {
  mark: GcCandidate[];
  unmark: GcCandidate[];
  /** unused for at least the grace period; at most `limit` of them, oldest first */
  collect: GcCandidate[];
}

export function planGc(
  candidates: Iterable<GcCandidate>,
  now: number,
  graceMs: number,
  limit: number,
): GcPlan {
  const plan: GcPlan = { mark: [], unmark: [], collect: [] };
  const due: GcCandidate[] = [];
  for (const c of candidates) {
    if (c.references > 0) {
      if (c.unusedSince !== undefined) plan.unmark.push(c);
    } else if (c.unusedSince === undefined) {
      plan.mark.push(c);
    } else if (now - c.unusedSince >= graceMs) {
      due.push(c);
    }
  }
  due.sort((a, b) => a.unusedSince! - b.unusedSince! || a.id - b.id);
  plan.collect = due.slice(0, limit);
  return plan;
}
