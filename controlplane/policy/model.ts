import type { CidrBlock } from './cidr.js';
import type { Selector } from './selector.js';
import type { PolicyRef, Section } from './types.js';

/**
 * A validated policy in the one shape the compiler reads, whatever language
 * it was written in. Every selector already carries the namespace and
 * local-cluster defaults, so matching needs no knowledge of the policy kind.
 */

export type Peer =
  /** every peer, inside or outside the mesh (identity 0 in the map) */
  | { kind: 'any' }
  | { kind: 'selector'; selector: Selector }
  | { kind: 'reserved'; id: number }
  /**
   * An address block. `pods`: Kubernetes ipBlock, which also matches pod IPs
   * (an identity whose pods are all inside); Cilium CIDR peers do not.
   */
  | { kind: 'cidr'; block: CidrBlock; pods: boolean };

export type PortItem =
  /** protocol 0 only with any port (low = high = 0) */
  | { kind: 'number'; protocol: number; low: number; high: number }
  /** a named container port; protocol 0 = take the container port's protocol */
  | { kind: 'named'; protocol: number; name: string };

export interface Rule {
  section: Section;
  /** index of the rule in its section, as written (the decision's ruleIndex) */
  index: number;
  /** empty: allows (or denies) nothing */
  peers: readonly Peer[];
  /** null: every port and protocol */
  ports: readonly PortItem[] | null;
  /** has L7 rules, which are not enforced: allowed at L4 */
  l7: boolean;
  /** depends on endpoints, not just identities: ipBlock over pods, egress named ports */
  endpointDependent: boolean;
}

/** One rule set with its subject: a policy, or one item of a Cilium `specs` list. */
export interface PolicyUnit {
  /** unique within a compile: `cluster/Kind/namespace/name#spec` */
  id: string;
  ref: PolicyRef;
  /** null: selects no endpoint (nodeSelector: host endpoints are not managed) */
  subject: Selector | null;
  /** turns default-deny on for the direction it selects */
  defaultDeny: { ingress: boolean; egress: boolean };
  audit: boolean;
  rules: readonly Rule[];
  warnings: readonly string[];
}

export function isEgress(section: Section): boolean {
  return section === 'egress' || section === 'egressDeny';
}

export function isDeny(section: Section): boolean {
  return section === 'ingressDeny' || section === 'egressDeny';
}
