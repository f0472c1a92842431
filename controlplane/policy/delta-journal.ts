import type { PolicyMapKey } from '../../common/index.js';
import type { Verdict } from '../../proto/index.js';
import type { EndpointState } from './endpoint-state.js';
import type { EntryKey } from './entry-table.js';
import type { EndpointDelta } from './types.js';

interface Touched {
  /** the endpoint had a compiled map before the operation */
  existed: boolean;
  flags: string;
  /**
   * Value of each changed key before the operation (first change wins), by
   * identity, then by the rest of the key as one exact number (48 bits):
   * numbers, not strings, as identity churn journals thousands of keys.
   */
  before: Map<number, Map<number, Verdict | undefined>>;
  /**
   * When the endpoint's state object was replaced before anything changed it
   * in place: that old state, untouched since, is the "before" of the whole
   * map (undefined: there was none). Diffing it at the end is cheaper than
   * noting every key of both maps.
   */
  base?: { state: EndpointState | undefined };
}

const P16 = 0x1_0000;

function restOf(k: EntryKey): number {
  return ((k.direction * 256 + k.protocol) * P16 + k.portLow) * P16 + k.portHigh;
}

function keyOf(identity: number, rest: number): PolicyMapKey {
  const portHigh = rest % P16;
  const portLow = Math.floor(rest / P16) % P16;
  const meta = Math.floor(rest / (P16 * P16));
  return {
    direction: Math.floor(meta / 256),
    identity,
    protocol: meta % 256,
    portLow,
    portHigh,
  };
}

function flagsOf(state: EndpointState | undefined): string {
  if (state === undefined) return '';
  return `${state.ingress.enforced}|${state.egress.enforced}|${state.errorCount}`;
}

/**
 * Records, during one engine operation, what each touched endpoint's map held
 * before, so one operation that changes an endpoint several ways (a peer
 * delta, then a recompute) yields one exact delta against the state before.
 * Only touched keys are kept, so its cost follows the change, not the maps.
 */
export class DeltaJournal {
  readonly #touched = new Map<string, Touched>();

  #entry(name: string, state: EndpointState | undefined): Touched {
    let t = this.#touched.get(name);
    if (t === undefined) {
      t = { existed: state !== undefined, flags: flagsOf(state), before: new Map() };
      this.#touched.set(name, t);
    }
    return t;
  }

  /** Call before changing an endpoint's state object (or replacing it). */
  begin(
    name: string,
    state: EndpointState | undefined,
  ): (key: EntryKey, before: Verdict | undefined) => void {
    const t = this.#entry(name, state);
    return (key, before) => {
      let byRest = t.before.get(key.identity);
      if (byRest === undefined)
        t.before.set(key.identity, (byRest = new Map<number, Verdict | undefined>()));
      const rest = restOf(key);
      if (!byRest.has(rest)) byRest.set(rest, before);
    };
  }

  /** A whole map replaced: every key of the old map and of the new one may have changed. */
  replaced(name: string, old: EndpointState | undefined, next: EndpointState | undefined): void {
    if (!this.#touched.has(name)) {
      // The engine drops a replaced state object, so `old` stays as it is now.
      this.#entry(name, old).base = { state: old };
      return;
    }
    const t = this.#touched.get(name)!;
    if (t.base !== undefined) return;
    const note = this.begin(name, old);
    old?.forEach((k, v) => note(k, v));
    next?.forEach((k) => {
      if (old?.get(k) === undefined) note(k, undefined);
    });
  }

  finish(
    states: ReadonlyMap<string, EndpointState>,
    errorsOf: (s: EndpointState) => EndpointDelta['errors'],
  ): EndpointDelta[] {
    const out: EndpointDelta[] = [];
    for (const [name, t] of this.#touched) {
      const state = states.get(name);
      if (state === undefined) {
        if (t.existed) {
          out.push({
            endpoint: name,
            present: false,
            ingressEnforced: false,
            egressEnforced: false,
            upserts: [],
            deletes: [],
            errors: [],
          });
        }
        continue;
      }
      const d: EndpointDelta = {
        endpoint: name,
        present: true,
        ingressEnforced: state.ingress.enforced,
        egressEnforced: state.egress.enforced,
        upserts: [],
        deletes: [],
        errors: errorsOf(state),
      };
      if (t.base !== undefined) diff(t.base.state, state, d);
      else
        for (const [identity, byRest] of t.before) {
          for (const [rest, before] of byRest) {
            const key = keyOf(identity, rest);
            const now = state.get(key);
            if (now === before) continue;
            if (now === undefined) d.deletes.push(key);
            else d.upserts.push({ ...key, verdict: now });
          }
        }
      if (d.upserts.length > 0 || d.deletes.length > 0 || !t.existed || t.flags !== flagsOf(state))
        out.push(d);
    }
    return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  }
}

/** The changes from one map to another, into `d`. */
function diff(before: EndpointState | undefined, after: EndpointState, d: EndpointDelta): void {
  before?.forEach((k, v) => {
    const now = after.get(k);
    if (now === v) return;
    const key: PolicyMapKey = { ...k };
    if (now === undefined) d.deletes.push(key);
    else d.upserts.push({ ...key, verdict: now });
  });
  after.forEach((k, verdict) => {
    if (before?.get(k) === undefined) d.upserts.push({ ...k, verdict });
  });
}
