import type { PolicyKind, PolicyObject } from '../../common/index.js';
import type { IdentityRecord, MeshModel, ModelChange, StoredPod } from '../model/index.js';
import {
  PolicyEngine,
  parsePolicy,
  trace,
  type TraceQuery,
  type TraceResult,
  type EndpointInfo,
  type EndpointPolicyResult,
  type IdentityInfo,
  type PolicyInfo,
  type PolicyUnit,
} from '../policy/index.js';

function identityInfo(r: IdentityRecord): IdentityInfo {
  const labels: Record<string, string> = {};
  for (const line of r.labels.split('\n')) {
    if (line === '') continue;
    const i = line.indexOf('=');
    labels[line.slice(0, i)] = line.slice(i + 1);
  }
  return { id: r.id, cluster: r.cluster, labels };
}

function endpointInfo(p: StoredPod): EndpointInfo {
  return {
    cluster: p.cluster,
    namespace: p.namespace,
    name: p.name,
    identity: p.identity,
    ips: p.ips,
    namedPorts: p.ports
      .filter((x) => x.name !== '')
      .map((x) => ({ name: x.name, port: x.port, protocol: x.protocol })),
    node: p.node,
  };
}

/**
 * The compiled policy of every endpoint, kept in step with the model: the
 * policy engine fed identity and endpoint churn incrementally; a policy or
 * CIDR identity change rebuilds it (policies change rarely; identities and
 * endpoints churn). Pure: the caller owns the model and the clock.
 */
export class PolicyState {
  #engine: PolicyEngine | undefined;
  readonly #capacityOf: (endpoint: EndpointInfo) => number;
  /** policy key -> its parse problems, for `meshctl policies` */
  readonly #invalid = new Map<string, string[]>();

  /** `capacityOf`: the policy map capacity of an endpoint (its node's datapath's). */
  constructor(capacityOf: (endpoint: EndpointInfo) => number) {
    this.#capacityOf = capacityOf;
  }

  /** Folds a model change in; returns the endpoints (cluster/namespace/pod) whose compiled policy may have changed. */
  apply(model: MeshModel, change: ModelChange): Set<string> | 'all' {
    if (!this.#engine || change.policies.has('*') || change.cidrs.size > 0) {
      this.#rebuild(model);
      return 'all';
    }
    const engine = this.#engine;
    const touched = new Set<string>();
    const note = (deltas: { endpoint: string }[]): void => {
      for (const d of deltas) touched.add(d.endpoint);
    };
    // One policy changed among many: recompile only what it selects, before and after.
    for (const key of change.policies) {
      const [cluster, kind, namespace, name] = key.split('/') as [
        string,
        PolicyKind,
        string,
        string,
      ];
      const ref = { cluster, kind, namespace, name };
      const object = model.objectsOf(cluster).get(`${kind}/${namespace}/${name}`) as
        PolicyObject | undefined;
      const parsed = object ? parsePolicy(object) : undefined;
      this.#invalid.delete(`${cluster}/${kind}/${namespace}/${name}`);
      if (parsed?.ok) {
        note(engine.upsertPolicy(parsed.value, ref));
      } else {
        if (parsed)
          this.#invalid.set(
            `${cluster}/${kind}/${namespace}/${name}`,
            parsed.errors.map((e) => e.message),
          );
        note(engine.removePolicy(ref));
      }
    }
    const identities = new Map<number, IdentityRecord>();
    for (const r of model.identities()) if (change.identities.has(r.id)) identities.set(r.id, r);
    for (const id of change.identities) {
      const r = identities.get(id);
      note(r ? engine.upsertIdentity(identityInfo(r)) : engine.removeIdentity(id));
    }
    for (const [name, { after }] of change.pods) {
      touched.add(name);
      if (after && !after.hostNetwork) note(engine.upsertEndpoint(endpointInfo(after)));
      else note(engine.removeEndpoint(name));
    }
    return touched;
  }

  result(endpoint: string): EndpointPolicyResult | undefined {
    return this.#engine?.result(endpoint);
  }

  /** Verdict and the decision that made it (`meshctl policy trace`). */
  trace(q: TraceQuery, model: MeshModel): TraceResult | { error: string } {
    if (!this.#engine) return { error: 'no policy state yet' };
    const cidrs = model.cidrIdentities();
    return trace(this.#engine, q, (p) => cidrs.get(p));
  }

  policies(): PolicyInfo[] {
    return this.#engine?.policies() ?? [];
  }

  /** Policies that failed to parse (a source bypassing validation, or another version). */
  invalid(): ReadonlyMap<string, string[]> {
    return this.#invalid;
  }

  #rebuild(model: MeshModel): void {
    const units: PolicyUnit[] = [];
    this.#invalid.clear();
    for (const p of model.policies()) {
      const parsed = parsePolicy(p);
      if (parsed.ok) units.push(...parsed.value);
      else
        this.#invalid.set(
          policyKey(p),
          parsed.errors.map((e) => e.message),
        );
    }
    const identities = [...model.identities()].map(identityInfo);
    const endpoints: EndpointInfo[] = [];
    for (const p of model.pods()) if (!p.hostNetwork) endpoints.push(endpointInfo(p));
    const cidrs = model.cidrIdentities();
    this.#engine = new PolicyEngine(
      units,
      { identities, endpoints },
      { cidrIdentity: (prefix) => cidrs.get(prefix), capacityOf: this.#capacityOf },
    );
  }
}

export function policyKey(p: PolicyObject): string {
  return `${p.cluster}/${p.kind}/${p.namespace}/${p.name}`;
}
