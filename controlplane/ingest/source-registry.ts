import type { Clock, SourceHealthEvent } from '../../common/index.js';

export interface SourceState {
  cluster: string;
  origin: string;
  /** last health event or change set received, on this replica's clock; 0 = never */
  lastSeen: number;
  /** last change set committed, on this replica's clock; 0 = never */
  lastEventAt: number;
  /** what the source or the control plane refused last; '' when fine */
  lastError: string;
  /** change sets on this cluster's subject the control plane refused (malformed, forged, not a member) */
  refused: number;
}

/**
 * Bookkeeping of cluster sources: health and the outcome of their change
 * sets. Never part of a mesh revision. `connected` = heard from within the
 * liveness window.
 */
export class SourceRegistry {
  readonly #clock: Clock;
  readonly #livenessMs: number;
  readonly #sources = new Map<string, SourceState>();

  constructor(clock: Clock, opts: { livenessMs?: number } = {}) {
    this.#clock = clock;
    this.#livenessMs = opts.livenessMs ?? 10_000;
  }

  #get(cluster: string): SourceState {
    let s = this.#sources.get(cluster);
    if (!s) {
      s = { cluster, origin: '', lastSeen: 0, lastEventAt: 0, lastError: '', refused: 0 };
      this.#sources.set(cluster, s);
    }
    return s;
  }

  onHealth(ev: SourceHealthEvent): void {
    const s = this.#get(ev.cluster);
    s.origin = ev.origin;
    s.lastSeen = this.#clock.now();
    // A source-side refusal (malformed manifests) is the freshest truth about
    // the source; a control-plane-side refusal stays until a commit succeeds.
    if (ev.lastError !== '' || !s.lastError.startsWith('control plane refused'))
      s.lastError = ev.lastError;
  }

  onCommitted(cluster: string): void {
    const s = this.#get(cluster);
    s.lastSeen = this.#clock.now();
    s.lastEventAt = s.lastSeen;
    if (s.lastError.startsWith('control plane refused')) s.lastError = '';
  }

  onRefused(cluster: string, error: string): void {
    const s = this.#get(cluster);
    s.lastSeen = this.#clock.now();
    s.lastError = `control plane refused a change set: ${error}`;
    s.refused += 1;
  }

  state(cluster: string): (SourceState & { connected: boolean }) | undefined {
    const s = this.#sources.get(cluster);
    if (!s) return undefined;
    return {
      ...s,
      connected: s.lastSeen > 0 && this.#clock.now() - s.lastSeen <= this.#livenessMs,
    };
  }
}
