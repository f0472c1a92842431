import type { Verdict } from '../../proto/index.js';
import { parsePolicyKeyString } from '../../common/index.js';
import type { EndpointState } from './endpoint-state.js';
import type { EndpointDelta } from './types.js';

interface Touched {
  /** the endpoint had a compiled map before the operation */
  existed: boolean;
  flags: string;
  /** value of each changed key before the operation (first change wins) */
  before: Map<string, Verdict | undefined>;
}

function flagsOf(state: EndpointState | undefined): string {
  if (state === undefined) return '';
  const errors = [...state.errors.values()].reduce((n, l) => n + l.length, 0);
  return `${state.ingress.enforced}|${state.egress.enforced}|${errors}`;
}

/**
 * Records, during one engine operation, what each touched endpoint's map held
 * before, so one operation that changes an endpoint several ways (a peer
 * delta, then a recompute) yields one exact delta against the state before.
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
  ): (key: string, before: Verdict | undefined) => void {
    const t = this.#entry(name, state);
    return (key, before) => {
      if (!t.before.has(key)) t.before.set(key, before);
    };
  }

  /** A whole map replaced: every key of the old map and of the new one may have changed. */
  replaced(name: string, old: EndpointState | undefined, next: EndpointState | undefined): void {
    const note = this.begin(name, old);
    for (const [k, v] of old?.map ?? []) note(k, v);
    for (const k of next?.map.keys() ?? []) if (!old?.map.has(k)) note(k, undefined);
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
      for (const [key, before] of t.before) {
        const now = state.map.get(key);
        if (now === before) continue;
        if (now === undefined) d.deletes.push(parsePolicyKeyString(key));
        else d.upserts.push({ ...parsePolicyKeyString(key), verdict: now });
      }
      if (d.upserts.length > 0 || d.deletes.length > 0 || !t.existed || t.flags !== flagsOf(state))
        out.push(d);
    }
    return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  }
}
