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
  onStreamOpen?(node: NodeIdentity): void;
  onStreamClosed?(node: NodeIdentity, reason: string): void;
  onPush?(node: NodeIdentity, push: PushInfo): void;
  onAck?(node: NodeIdentity, ack: AckInfo): void;
  onNack?(node: NodeIdentity, nack: NackInfo): void;
  onVerification?(node: NodeIdentity, v: VerificationInfo): void;
}
