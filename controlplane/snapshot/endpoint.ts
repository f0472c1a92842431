import { TYPE_ENDPOINT, type PolicyEntry } from '../../proto/index.js';
import { compareStrings, encodeResource, type EncodedResource } from '../../common/index.js';
import { podName, type StoredPod } from '../model/index.js';

export function endpointResourceName(pod: {
  cluster: string;
  namespace: string;
  name: string;
}): string {
  return `endpoint/${podName(pod)}`;
}

export interface EndpointPolicy {
  ingressEnforced: boolean;
  egressEnforced: boolean;
  entries: PolicyEntry[];
}

/** A pod no policy selects allows everything in both directions (Kubernetes' default). */
export const UNENFORCED: EndpointPolicy = {
  ingressEnforced: false,
  egressEnforced: false,
  entries: [],
};
/** What an endpoint gets when its policy cannot be compiled exactly and it has nothing older: deny. */
export const FAIL_CLOSED: EndpointPolicy = {
  ingressEnforced: true,
  egressEnforced: true,
  entries: [],
};

/** The endpoint resource of one local pod: identity, IPs, named ports and its policy map entries. */
export function buildEndpointResource(
  pod: StoredPod,
  policy: EndpointPolicy = UNENFORCED,
): EncodedResource {
  const namedPorts = pod.ports
    .filter((p) => p.name !== '')
    .map((p) => ({ name: p.name, port: p.port, protocol: p.protocol }))
    .sort((a, b) => compareStrings(a.name, b.name));
  return encodeResource(endpointResourceName(pod), {
    typeUrl: TYPE_ENDPOINT,
    value: {
      cluster: pod.cluster,
      namespace: pod.namespace,
      name: pod.name,
      identity: pod.identity,
      ips: [...pod.ips].sort(),
      namedPorts,
      ingressEnforced: policy.ingressEnforced,
      egressEnforced: policy.egressEnforced,
      entries: policy.entries,
    },
  });
}
