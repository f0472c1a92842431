import type { PolicyKind, PolicyMapKey } from '../../common/index.js';
import type { PolicyEntry } from '../../proto/index.js';

/**
 * The engine's inputs and outputs. Inputs are narrow on purpose: the engine
 * sees identities, endpoints and policies, never etcd or the model, so it can
 * run in the control plane, in `meshctl simulate` and in tests alike.
 */

/** A security identity with its labels, keys with their source (`k8s:app`). */
export interface IdentityInfo {
  id: number;
  /** the cluster that allocated it ('' for reserved and CIDR identities) */
  cluster: string;
  labels: Readonly<Record<string, string>>;
}

export interface NamedPortInfo {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

/**
 * One endpoint (pod) of any cluster. Endpoints of every cluster are inputs:
 * ipBlock peers match pod IPs and egress named ports resolve against the
 * destination's pods. Entries are compiled for each endpoint whose identity is
 * known; an endpoint whose identity is unknown is ignored until it appears.
 */
export interface EndpointInfo {
  cluster: string;
  namespace: string;
  name: string;
  identity: number;
  ips: readonly string[];
  namedPorts: readonly NamedPortInfo[];
  /** put in audit mode: denies are reported, not enforced */
  audit?: boolean;
  /** the node it runs on (its map capacity is that node's datapath's) */
  node?: string;
}

export interface PolicyRef {
  cluster: string;
  kind: PolicyKind;
  /** '' for CiliumClusterwideNetworkPolicy */
  namespace: string;
  name: string;
}

export type Section = 'ingress' | 'egress' | 'ingressDeny' | 'egressDeny';

export interface CompileOptions {
  /** policy map capacity per endpoint (default 16,384) */
  capacity?: number;
  /**
   * The policy map capacity of one endpoint, when it differs by endpoint
   * (agents announce their datapath's); overrides `capacity`. Called when an
   * endpoint's result or delta is produced, so the answer may change between
   * calls (the caller then asks for the affected results again).
   */
  capacityOf?: (endpoint: EndpointInfo) => number;
  /**
   * The CIDR identity of a prefix the policies need (`requiredPrefixes`).
   * The caller allocates them centrally as `(1 << 24) | n`. Undefined when not
   * (yet) allocated: an error for the endpoints whose policies need it.
   */
  cidrIdentity?: (prefix: string) => number | undefined;
}

export interface EndpointIssue {
  message: string;
  policy?: PolicyRef;
}

/** The compiled policy of one endpoint. Owned by the caller once returned. */
export interface EndpointPolicyResult {
  cluster: string;
  namespace: string;
  name: string;
  identity: number;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  /** canonical order (common/policy-map.ts) */
  entries: PolicyEntry[];
  /**
   * Non-empty when the endpoint's policy cannot be enforced exactly
   * (unenforceable ipBlock or named port, missing CIDR identity, capacity
   * overflow). The entries then are incomplete; do not ship them.
   */
  errors: EndpointIssue[];
  warnings: EndpointIssue[];
}

/** What `meshctl policies` shows of one policy. */
export interface PolicyInfo {
  ref: PolicyRef;
  /** cluster/namespace/name of the endpoints it selects, sorted */
  selected: string[];
  warnings: string[];
  audit: boolean;
}

/** A change of one endpoint's compiled policy. */
export interface EndpointDelta {
  /** cluster/namespace/name */
  endpoint: string;
  /** false when the endpoint is gone (its whole map goes with it) */
  present: boolean;
  ingressEnforced: boolean;
  egressEnforced: boolean;
  upserts: PolicyEntry[];
  deletes: PolicyMapKey[];
  errors: EndpointIssue[];
}
