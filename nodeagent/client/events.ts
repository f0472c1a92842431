import type { ErrorDetail } from '../../proto/index.js';
import type { MeshError } from '../../common/index.js';
import type { Logger } from './logger.js';

/** What the agent tells telemetry. Payloads are fresh objects the listener may keep. */
export interface NodeAgentEvents {
  /** a stream is open and the control plane speaks our protocol */
  connected: { at: number; attempt: number };
  /** a stream attempt ended (every attempt, also ones that never connected) */
  disconnected: {
    at: number;
    wasConnected: boolean;
    error: MeshError | undefined;
    retryInMs: number | undefined;
  };
  revisionApplied: {
    revision: number;
    durationUs: number;
    digest: string;
    resources: number;
    /** W3C trace context the control plane sent with the revision (empty when untraced) */
    traceContext: Record<string, string>;
  };
  revisionRejected: {
    revision: number;
    traceContext: Record<string, string>;
    heldRevision: number;
    digest: string;
    error: MeshError;
    detail: ErrorDetail;
  };
  /** a full re-read; `matches` is false when the datapath no longer holds what the agent applied */
  verified: {
    revision: number;
    digest: string;
    expected: string;
    matches: boolean;
    reported: boolean;
  };
}

export type NodeAgentEventName = keyof NodeAgentEvents;
type Listener<K extends NodeAgentEventName> = (event: NodeAgentEvents[K]) => void;

/** A tiny typed event hub. A throwing listener is logged, never allowed to break the agent. */
export class AgentEvents {
  readonly #listeners = new Map<NodeAgentEventName, Set<(event: never) => void>>();
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Subscribes; returns the unsubscribe function. */
  on<K extends NodeAgentEventName>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<K extends NodeAgentEventName>(event: K, payload: NodeAgentEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as Listener<K>)(payload);
      } catch (err) {
        this.#logger.error('event listener failed', { event, error: String(err) });
      }
    }
  }
}
