import type { EncodedResource } from '../../common/index.js';
import { DeltaDiscoveryResponse } from '../../proto/index.js';

/** One response part of a revision as the control plane sends it: the bytes an agent receives. */
export function responsePart(
  typeUrl: string,
  resources: readonly EncodedResource[],
  revision: number,
  complete: boolean,
): Uint8Array {
  return DeltaDiscoveryResponse.encode({
    typeUrl,
    resources: resources.map((r) => ({ name: r.name, version: r.version, payload: r.payload })),
    removedResources: [],
    nonce: `${typeUrl}-${revision}`,
    meshRevision: revision,
    revisionComplete: complete,
    systemVersionInfo: String(revision),
    traceContext: {},
  }).finish();
}
