/**
 * Stream hooks the xDS server calls; telemetry (the tracker, metrics) and
 * tests subscribe. Implementations must not throw and must not block.
 */
export interface NodeIdentity {
  /** cluster/node */
  key: string;
  cluster: string;
  node: string;
}

export interface PushInfo {
  revision: number;
  nonce: string;
  resources: number;
  removed: number;
  bytes: number;
  sentAt: number;
}

export interface AckInfo {
  revision: number;
  nonce: string;
  applyDurationUs: number;
  /** what the agent says its datapath holds */
  digest: string;
  /** what it should hold, given the resource versions it acknowledged */
  expectedDigest: string;
  /** the acknowledged state is still the node's current expected snapshot */
  current: boolean;
  sentAt: number;
  receivedAt: number;
}

export interface NackInfo {
  revision: number;
  nonce: string;
  message: string;
  resourceNames: string[];
  /** revision the agent still holds */
  heldRevision: number;
}

export interface VerificationInfo {
  revision: number;
  digest: string;
  expectedDigest: string;
}

export interface XdsCallbacks {
  /**
   * Called just before a push is sent: the W3C trace context (a carrier such
   * as `{traceparent}`) to send with it, so the agent's apply joins the
   * revision's trace. The first non-empty answer of combined callbacks wins.
   */
  pushContext?(node: NodeIdentity, revision: number): Record<string, string> | undefined;
  onStreamOpen?(node: NodeIdentity): void;
  onStreamClosed?(node: NodeIdentity, reason: string): void;
  onPush?(node: NodeIdentity, push: PushInfo): void;
  onAck?(node: NodeIdentity, ack: AckInfo): void;
  onNack?(node: NodeIdentity, nack: NackInfo): void;
  onVerification?(node: NodeIdentity, v: VerificationInfo): void;
}

/** One set of callbacks calling each of `all` in order (e.g. the tracker, then tracing). */
export function combineCallbacks(...all: XdsCallbacks[]): XdsCallbacks {
  return {
    pushContext: (n, revision) => {
      for (const c of all) {
        const ctx = c.pushContext?.(n, revision);
        if (ctx && Object.keys(ctx).length > 0) return ctx;
      }
      return undefined;
    },
    onStreamOpen: (n) => all.forEach((c) => c.onStreamOpen?.(n)),
    onStreamClosed: (n, reason) => all.forEach((c) => c.onStreamClosed?.(n, reason)),
    onPush: (n, p) => all.forEach((c) => c.onPush?.(n, p)),
    onAck: (n, a) => all.forEach((c) => c.onAck?.(n, a)),
    onNack: (n, k) => all.forEach((c) => c.onNack?.(n, k)),
    onVerification: (n, v) => all.forEach((c) => c.onVerification?.(n, v)),
  };
}
