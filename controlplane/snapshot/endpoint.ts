import { TYPE_ENDPOINT } from '../../proto/index.js';
import { encodeResource, type EncodedResource } from '../../common/index.js';
import { podName, type StoredPod } from '../model/index.js';

export function endpointResourceName(pod: {
  cluster: string;
  namespace: string;
  name: string;
}): string {
  return `endpoint/${podName(pod)}`;
}

/**
 * The endpoint resource of one local pod: identity, IPs, named ports and its
 * policy map entries. Until the policy engine lands, no policy selects any
 * endpoint, so enforcement is off in both directions and there are no entries
 * (Kubernetes' default: a pod no policy selects allows everything).
 */
export function buildEndpointResource(pod: StoredPod): EncodedResource {
  const namedPorts = pod.ports
    .filter((p) => p.name !== '')
    .map((p) => ({ name: p.name, port: p.port, protocol: p.protocol }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return encodeResource(endpointResourceName(pod), {
    typeUrl: TYPE_ENDPOINT,
    value: {
      cluster: pod.cluster,
      namespace: pod.namespace,
      name: pod.name,
      identity: pod.identity,
      ips: [...pod.ips].sort(),
      namedPorts,
      ingressEnforced: false,
      egressEnforced: false,
      entries: [],
    },
  });
}
