import { decodeResource, resourceKey } from '../../common/index.js';
import {
  TYPE_ENDPOINT,
  type ListEndpointsResponse,
  type ListPoliciesResponse,
  type PolicyStatus,
  type TraceRequest,
  type TraceResponse,
} from '../../proto/index.js';
import type { MeshModel } from '../model/index.js';
import { podName } from '../model/index.js';
import { endpointResourceName, nodeKey, type SnapshotCache } from '../snapshot/index.js';

export interface PolicyViewDeps {
  model: MeshModel;
  cache: SnapshotCache;
}

/** `meshctl endpoints`: what each endpoint's node was sent, and why not when it was not. */
export function listEndpoints(d: PolicyViewDeps, cluster: string): ListEndpointsResponse {
  const errors = d.cache.endpointErrors();
  const endpoints = [...d.model.pods()]
    .filter((p) => cluster === '' || p.cluster === cluster)
    .sort((a, b) => (podName(a) < podName(b) ? -1 : 1))
    .map((p) => {
      const r = d.cache
        .snapshot(nodeKey(p.cluster, p.node))
        ?.get(resourceKey(TYPE_ENDPOINT, endpointResourceName(p)));
      const v = r ? decodeResource(r.typeUrl, r.payload) : undefined;
      const ep = v?.typeUrl === TYPE_ENDPOINT ? v.value : undefined;
      return {
        cluster: p.cluster,
        namespace: p.namespace,
        name: p.name,
        node: p.node,
        identity: p.identity,
        ingressEnforced: ep?.ingressEnforced ?? false,
        egressEnforced: ep?.egressEnforced ?? false,
        entries: ep?.entries.length ?? 0,
        capacity: d.cache.capacityOf(p),
        errors: errors.get(podName(p)) ?? [],
        ips: p.ips,
        version: r?.version ?? '',
      };
    });
  return { revision: d.cache.latest.revision, endpoints };
}

/** `meshctl policies`: each policy's selected endpoints, warnings, and stored policies that do not parse. */
export function listPolicies(d: PolicyViewDeps): ListPoliciesResponse {
  const policies: PolicyStatus[] = d.cache.policy.policies().map((p) => ({
    cluster: p.ref.cluster,
    kind: p.ref.kind,
    namespace: p.ref.namespace,
    name: p.ref.name,
    selected: p.selected,
    warnings: p.warnings,
    audit: p.audit,
    errors: [],
  }));
  for (const [key, errs] of d.cache.policy.invalid()) {
    const [c, kind, namespace, name] = key.split('/');
    policies.push({
      cluster: c!,
      kind: kind!,
      namespace: namespace!,
      name: name!,
      selected: [],
      warnings: [],
      audit: false,
      errors: errs,
    });
  }
  return { revision: d.cache.latest.revision, policies };
}

export function tracePolicy(
  d: PolicyViewDeps,
  req: TraceRequest,
): TraceResponse | { error: string } {
  const r = d.cache.policy.trace(
    { from: req.from, to: req.to, port: req.port, protocol: req.protocol },
    d.model,
  );
  if ('error' in r) return r;
  return {
    allowed: r.allowed,
    reason: r.reason,
    revision: d.cache.latest.revision,
    decision: {
      kind: r.decision.kind,
      policyCluster: r.decision.policy?.cluster ?? '',
      policyKind: r.decision.policy?.kind ?? '',
      policyNamespace: r.decision.policy?.namespace ?? '',
      policyName: r.decision.policy?.name ?? '',
      section: r.decision.section,
      ruleIndex: r.decision.ruleIndex ?? -1,
    },
  };
}
