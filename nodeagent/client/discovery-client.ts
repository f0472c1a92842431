import { makeGenericClientConstructor } from '@grpc/grpc-js';
import { WireReader } from '../../common/index.js';
import {
  DeltaDiscoveryResponse,
  MeshDiscoveryService,
  type MeshDiscoveryClient,
} from '../../proto/index.js';

/** A discovery response from its bytes, as the agent's client decodes it. */
export function decodeResponse(bytes: Uint8Array): DeltaDiscoveryResponse {
  return DeltaDiscoveryResponse.decode(new WireReader(bytes));
}

/**
 * The agent's discovery client: the generated one, with responses decoded
 * through WireReader (every resource name and version is a string; an
 * agent decodes every response it is sent).
 */
export const DiscoveryClient = makeGenericClientConstructor(
  {
    deltaResources: {
      ...MeshDiscoveryService.deltaResources,
      responseDeserialize: decodeResponse,
    },
  },
  'meshplane.v1.MeshDiscovery',
) as unknown as typeof MeshDiscoveryClient;
