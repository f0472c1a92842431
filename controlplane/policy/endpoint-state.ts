import { Direction, Verdict, type PolicyEntry } from '../../proto/index.js';
import { parsePolicyKeyString, policyKeyString, sortPolicyEntries } from '../../common/index.js';
import type { PolicyUnit } from './model.js';
import { isDeny, isEgress } from './model.js';
import type { Contribution } from './rule-entries.js';
import type { EndpointInfo, EndpointIssue, EndpointPolicyResult } from './types.js';

/** allow, deny, audit contributions to one key */
type Counts = [number, number, number];

const CATCH_ALL = {
  ingress: policyKeyString({
    direction: Direction.DIRECTION_INGRESS,
    identity: 0,
    protocol: 0,
    portLow: 0,
    portHigh: 0,
  }),
  egress: policyKeyString({
    direction: Direction.DIRECTION_EGRESS,
    identity: 0,
    protocol: 0,
    portLow: 0,
    portHigh: 0,
  }),
};

/** How a direction of an endpoint is enforced, from the units that select it. */
interface DirectionMode {
  /** default deny, enforced */
  enforced: boolean;
  /** default deny, reported only (audit policies, or an endpoint in audit mode) */
  audited: boolean;
}

/**
 * The compiled state of one endpoint: contributions per policy unit,
 * reference counts per key, and the resulting map. Contributions are kept so
 * an identity change adds or removes exactly its own entries, and so `trace`
 * can name the rule behind an entry.
 */
export class EndpointState {
  readonly units: PolicyUnit[];
  readonly ingress: DirectionMode;
  readonly egress: DirectionMode;
  readonly contributions = new Map<string, Contribution[]>();
  /** errors per unit, with the peer they came from (0 when not peer-specific) */
  readonly errors = new Map<string, { peer: number; message: string }[]>();
  readonly #counts = new Map<string, Counts>();
  readonly map = new Map<string, Verdict>();

  constructor(
    readonly info: EndpointInfo,
    units: PolicyUnit[],
  ) {
    this.units = units;
    const mode = (egress: boolean): DirectionMode => {
      const selecting = units.filter((u) =>
        egress ? u.defaultDeny.egress : u.defaultDeny.ingress,
      );
      const enforcing = selecting.some((u) => !u.audit) && info.audit !== true;
      return { enforced: enforcing, audited: !enforcing && selecting.length > 0 };
    };
    this.ingress = mode(false);
    this.egress = mode(true);
    for (const dir of ['ingress', 'egress'] as const)
      if (this[dir].audited) this.map.set(CATCH_ALL[dir], Verdict.VERDICT_AUDIT);
  }

  /** Allow rules of audit policies must not open what an enforcing policy closes. */
  applies(unit: PolicyUnit, section: Contribution['rule']['section']): boolean {
    return !(
      unit.audit &&
      !isDeny(section) &&
      this[isEgress(section) ? 'egress' : 'ingress'].enforced
    );
  }

  /** Adds contributions; returns the keys whose counts changed. */
  add(unitId: string, list: readonly Contribution[], changed: Set<string>): void {
    if (list.length === 0) return;
    let held = this.contributions.get(unitId);
    if (held === undefined) this.contributions.set(unitId, (held = []));
    for (const c of list) {
      held.push(c);
      let counts = this.#counts.get(c.key);
      if (counts === undefined) this.#counts.set(c.key, (counts = [0, 0, 0]));
      counts[slot(c.verdict)] += 1;
      changed.add(c.key);
    }
  }

  /** Removes a unit's contributions matching `which` (all when absent). */
  remove(unitId: string, changed: Set<string>, which?: (c: Contribution) => boolean): void {
    const held = this.contributions.get(unitId);
    if (held === undefined) return;
    const keep: Contribution[] = [];
    for (const c of held) {
      if (which !== undefined && !which(c)) {
        keep.push(c);
        continue;
      }
      const counts = this.#counts.get(c.key)!;
      counts[slot(c.verdict)] -= 1;
      if (counts[0] + counts[1] + counts[2] === 0) this.#counts.delete(c.key);
      changed.add(c.key);
    }
    if (keep.length === 0) this.contributions.delete(unitId);
    else this.contributions.set(unitId, keep);
  }

  /**
   * Recomputes the verdict of the changed keys and tells `journal` the value
   * each had before, so the operation's delta can be computed at its end.
   */
  settle(
    changed: Iterable<string>,
    journal?: (key: string, before: Verdict | undefined) => void,
  ): void {
    for (const key of changed) {
      const next = this.#verdict(key);
      const prev = this.map.get(key);
      if (next === prev) continue;
      journal?.(key, prev);
      if (next === undefined) this.map.delete(key);
      else this.map.set(key, next);
    }
  }

  #verdict(key: string): Verdict | undefined {
    const dir = key.startsWith(`${Direction.DIRECTION_EGRESS}|`) ? 'egress' : 'ingress';
    const counts = this.#counts.get(key);
    if (counts !== undefined && counts[1] > 0)
      return this.info.audit === true ? Verdict.VERDICT_AUDIT : Verdict.VERDICT_DENY;
    if (counts !== undefined && counts[2] > 0) return Verdict.VERDICT_AUDIT;
    // Allow entries matter only where something denies by default.
    const mode = this[dir];
    if (counts !== undefined && counts[0] > 0 && (mode.enforced || mode.audited))
      return Verdict.VERDICT_ALLOW;
    if (key === CATCH_ALL[dir] && mode.audited) return Verdict.VERDICT_AUDIT;
    return undefined;
  }

  entries(): PolicyEntry[] {
    return sortPolicyEntries(
      [...this.map].map(([key, verdict]) => ({ ...parsePolicyKeyString(key), verdict })),
    );
  }

  /** Unenforceable rules, missing CIDR identities and a capacity overflow. */
  errorList(capacity: number): EndpointIssue[] {
    const errors: EndpointIssue[] = [];
    for (const unit of this.units) {
      for (const e of this.errors.get(unit.id) ?? [])
        errors.push({ message: e.message, policy: unit.ref });
    }
    if (this.map.size > capacity) {
      errors.push({
        message: `policy map overflow: ${this.map.size} entries, capacity ${capacity}`,
      });
    }
    return errors;
  }

  result(capacity: number): EndpointPolicyResult {
    const errors = this.errorList(capacity);
    const warnings: EndpointIssue[] = [];
    for (const unit of this.units) {
      for (const w of unit.warnings) warnings.push({ message: w, policy: unit.ref });
    }
    return {
      cluster: this.info.cluster,
      namespace: this.info.namespace,
      name: this.info.name,
      identity: this.info.identity,
      ingressEnforced: this.ingress.enforced,
      egressEnforced: this.egress.enforced,
      entries: this.entries(),
      errors,
      warnings,
    };
  }
}

function slot(v: Verdict): 0 | 1 | 2 {
  return v === Verdict.VERDICT_DENY ? 1 : v === Verdict.VERDICT_AUDIT ? 2 : 0;
}
