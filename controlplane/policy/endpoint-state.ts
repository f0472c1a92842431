import { Direction, Verdict, type PolicyEntry } from '../../proto/index.js';
import { sortPolicyEntries } from '../../common/index.js';
import type { CountSlot, EntryKey, VerdictRules } from './entry-table.js';
import { EntryTable } from './entry-table.js';
import type { PolicyUnit } from './model.js';
import { isDeny, isEgress } from './model.js';
import type { Section } from './types.js';
import type { EndpointInfo, EndpointIssue, EndpointPolicyResult } from './types.js';

/** How a direction of an endpoint is enforced, from the units that select it. */
interface DirectionMode {
  /** default deny, enforced */
  readonly enforced: boolean;
  /** default deny, reported only (audit policies, or an endpoint in audit mode) */
  readonly audited: boolean;
}

function catchAll(direction: Direction): EntryKey {
  return { direction, identity: 0, protocol: 0, portLow: 0, portHigh: 0 };
}

function isCatchAll(k: EntryKey): boolean {
  return k.identity === 0 && k.protocol === 0 && k.portLow === 0 && k.portHigh === 0;
}

/**
 * The compiled state of one endpoint: per key, how many rule contributions
 * allow, deny or audit it (so an identity change adds or removes exactly its
 * own), and the resulting map. Which rule is behind an entry is not stored —
 * `trace` recomputes it — because storing it per entry is what made the full
 * compile slow. Errors (unenforceable rules, missing CIDR identities) are
 * per unit and only change when the endpoint is compiled from scratch.
 */
export class EndpointState implements VerdictRules {
  readonly units: readonly PolicyUnit[];
  readonly ingress: DirectionMode;
  readonly egress: DirectionMode;
  /** per unit; created on the first error (most endpoints have none) */
  #errors: Map<PolicyUnit, string[]> | undefined;
  readonly #table = new EntryTable();

  constructor(
    readonly info: EndpointInfo,
    units: readonly PolicyUnit[],
  ) {
    this.units = units;
    this.ingress = directionMode(units, info, false);
    this.egress = directionMode(units, info, true);
    // An audited default deny is reported through an any-any audit entry.
    if (this.ingress.audited) this.#table.touch(catchAll(Direction.DIRECTION_INGRESS));
    if (this.egress.audited) this.#table.touch(catchAll(Direction.DIRECTION_EGRESS));
  }

  /** Allow rules of audit policies must not open what an enforcing policy closes. */
  applies(unit: PolicyUnit, section: Section): boolean {
    return !(
      unit.audit &&
      !isDeny(section) &&
      this[isEgress(section) ? 'egress' : 'ingress'].enforced
    );
  }

  /** Counts one contribution in (+1) or out (-1); `settle` then updates the map. */
  count(key: EntryKey, slot: CountSlot, delta: 1 | -1): void {
    this.#table.count(key, slot, delta);
  }

  /** Room for about `keys` more keys (a hint: counting still grows the map as needed). */
  reserve(keys: number): void {
    this.#table.reserve(keys);
  }

  unitErrors(unit: PolicyUnit): string[] {
    this.#errors ??= new Map();
    let list = this.#errors.get(unit);
    if (list === undefined) this.#errors.set(unit, (list = []));
    return list;
  }

  get errorCount(): number {
    let n = 0;
    for (const l of this.#errors?.values() ?? []) n += l.length;
    return n;
  }

  /**
   * Recomputes the verdict of the keys counted since the last settle and
   * tells `journal` the value each changed one had before, so an operation's
   * delta can be computed at its end.
   */
  settle(journal?: (key: EntryKey, before: Verdict | undefined) => void): void {
    this.#table.settle(this, journal);
  }

  /** VerdictRules: deny beats audit beats allow; allows only where something denies by default. */
  verdictOf(k: EntryKey, allow: number, deny: number, audit: number): Verdict | 0 {
    if (deny > 0) return this.info.audit === true ? Verdict.VERDICT_AUDIT : Verdict.VERDICT_DENY;
    if (audit > 0) return Verdict.VERDICT_AUDIT;
    const mode =
      (k.direction as Direction) === Direction.DIRECTION_EGRESS ? this.egress : this.ingress;
    if (allow > 0 && (mode.enforced || mode.audited)) return Verdict.VERDICT_ALLOW;
    if (mode.audited && isCatchAll(k)) return Verdict.VERDICT_AUDIT;
    return 0;
  }

  /** Number of map entries. */
  get size(): number {
    return this.#table.size;
  }

  get(key: EntryKey): Verdict | undefined {
    return this.#table.get(key);
  }

  forEach(fn: (key: EntryKey, verdict: Verdict) => void): void {
    this.#table.forEach(fn);
  }

  entries(): PolicyEntry[] {
    const out: PolicyEntry[] = [];
    this.#table.forEach((k, verdict) => out.push({ ...k, direction: k.direction, verdict }));
    return sortPolicyEntries(out);
  }

  /** Unenforceable rules, missing CIDR identities and a capacity overflow. */
  errorList(capacity: number): EndpointIssue[] {
    const errors: EndpointIssue[] = [];
    for (const unit of this.units) {
      // Sorted: peers are visited in the order identities arrived, which history decides.
      for (const message of [...(this.#errors?.get(unit) ?? [])].sort())
        errors.push({ message, policy: unit.ref });
    }
    if (this.size > capacity) {
      errors.push({
        message: `policy map overflow: ${this.size} entries, capacity ${capacity}`,
      });
    }
    return errors;
  }

  result(capacity: number): EndpointPolicyResult {
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
      errors: this.errorList(capacity),
      warnings,
    };
  }
}

/** The three possible modes, shared: there is one state per endpoint, and 100k endpoints. */
const OPEN: DirectionMode = Object.freeze({ enforced: false, audited: false });
const ENFORCED: DirectionMode = Object.freeze({ enforced: true, audited: false });
const AUDITED: DirectionMode = Object.freeze({ enforced: false, audited: true });

function directionMode(
  units: readonly PolicyUnit[],
  info: EndpointInfo,
  egress: boolean,
): DirectionMode {
  const selecting = units.filter((u) => (egress ? u.defaultDeny.egress : u.defaultDeny.ingress));
  if (selecting.length === 0) return OPEN;
  return selecting.some((u) => !u.audit) && info.audit !== true ? ENFORCED : AUDITED;
}
