import type { ClusterSpec, MeshObject, PodObject, PolicyObject } from '../../common/index.js';
import {
  canonicalLabels,
  clusterIdentity,
  defaultLabelFilter,
  identityLabels,
} from '../identity/index.js';
import type { EndpointInfo, IdentityInfo } from './types.js';

export interface OfflineMesh {
  identities: IdentityInfo[];
  endpoints: EndpointInfo[];
  policies: PolicyObject[];
  /** CIDR identity of each prefix, `(1 << 24) | n` in prefix order */
  cidrIdentities: Map<string, number>;
}

/**
 * Identities and endpoints of a mesh as the control plane would derive them,
 * numbered deterministically for offline use (`meshctl simulate`): per
 * cluster, distinct label sets in canonical order get 256, 257, ... The
 * numbers differ from a live mesh's; verdicts do not. Pure.
 */
export function offlineMesh(
  clusters: readonly { spec: ClusterSpec; objects: readonly MeshObject[] }[],
  prefixes: readonly string[] = [],
): OfflineMesh {
  const identities: IdentityInfo[] = [];
  const endpoints: EndpointInfo[] = [];
  const policies: PolicyObject[] = [];
  for (const { spec, objects } of clusters) {
    const nsLabels = new Map<string, Record<string, string>>();
    for (const o of objects) if (o.kind === 'Namespace') nsLabels.set(o.name, o.labels);
    const pods = objects.filter((o): o is PodObject => o.kind === 'Pod' && !o.hostNetwork);
    policies.push(
      ...objects.filter(
        (o): o is PolicyObject =>
          o.kind === 'NetworkPolicy' ||
          o.kind === 'CiliumNetworkPolicy' ||
          o.kind === 'CiliumClusterwideNetworkPolicy',
      ),
    );
    const labelsOf = (p: PodObject) =>
      identityLabels(
        {
          cluster: spec.name,
          namespace: p.namespace,
          podLabels: p.labels,
          namespaceLabels: nsLabels.get(p.namespace) ?? {
            'kubernetes.io/metadata.name': p.namespace,
          },
          serviceAccount: p.serviceAccount,
        },
        defaultLabelFilter(),
      );
    const byText = new Map<string, Record<string, string>>();
    for (const p of pods) {
      const labels = labelsOf(p);
      byText.set(canonicalLabels(labels), labels);
    }
    const numbers = new Map<string, number>();
    [...byText.keys()].sort().forEach((text, i) => {
      const id = clusterIdentity(spec.id, 256 + i);
      numbers.set(text, id);
      identities.push({ id, cluster: spec.name, labels: byText.get(text)! });
    });
    for (const p of pods) {
      endpoints.push({
        cluster: spec.name,
        namespace: p.namespace,
        name: p.name,
        identity: numbers.get(canonicalLabels(labelsOf(p)))!,
        ips: [...p.ips],
        namedPorts: p.ports
          .filter((x) => x.name !== '')
          .map((x) => ({ name: x.name, port: x.port, protocol: x.protocol })),
      });
    }
  }
  const cidrIdentities = new Map(
    [...prefixes].sort().map((p, i) => [p, ((1 << 24) | (i + 1)) >>> 0] as const),
  );
  return { identities, endpoints, policies, cidrIdentities };
}
