import type * as grpc from '@grpc/grpc-js';
import type { EncodedResource } from '../../common/index.js';
import { DeltaDiscoveryResponse, MeshDiscoveryService } from '../../proto/index.js';

/** A DeltaDiscoveryResponse as it goes on the wire (see ResponseEncoder). */
export type EncodedResponse = Buffer;

/** The response fields that differ per node and per push; the resources are encoded apart. */
export type ResponseHead = Omit<DeltaDiscoveryResponse, 'resources'>;

/**
 * Encodes responses so that a resource's bytes are encoded once and the same
 * bytes go to every node: each `Resource` entry (field 2 of the response,
 * name, version and payload) is encoded once per resource version and kept
 * (weakly: old versions are collected); a node's response is its small
 * head (type, nonce, revision, trace context) followed by those shared
 * entries. Protobuf readers accept fields in any order and repeated fields
 * spread out, so the result decodes exactly as `DeltaDiscoveryResponse.encode`
 * of the whole message would.
 */
export class ResponseEncoder {
  readonly #entries = new WeakMap<EncodedResource, Buffer>();

  encode(head: ResponseHead, resources: readonly EncodedResource[]): EncodedResponse {
    const headBytes = DeltaDiscoveryResponse.encode({ ...head, resources: [] }).finish();
    if (resources.length === 0) return asBuffer(headBytes);
    const chunks: Uint8Array[] = [headBytes];
    let length = headBytes.byteLength;
    for (const r of resources) {
      const entry = this.#entry(r);
      chunks.push(entry);
      length += entry.byteLength;
    }
    return Buffer.concat(chunks, length);
  }

  /** Field 2 of a response holding just `r`: tag, length and the encoded `Resource`. */
  #entry(r: EncodedResource): Buffer {
    let bytes = this.#entries.get(r);
    if (bytes === undefined) {
      const only = {
        ...EMPTY,
        resources: [{ name: r.name, version: r.version, payload: r.payload }],
      };
      bytes = asBuffer(DeltaDiscoveryResponse.encode(only).finish());
      this.#entries.set(r, bytes);
    }
    return bytes;
  }
}

const EMPTY: DeltaDiscoveryResponse = DeltaDiscoveryResponse.fromPartial({});

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * The discovery service as the xDS server registers it: requests decoded as
 * usual, responses written already encoded (ResponseEncoder), so grpc-js
 * does not encode them again per node.
 */
export const discoveryServiceDefinition = {
  deltaResources: {
    ...MeshDiscoveryService.deltaResources,
    responseSerialize: (value: EncodedResponse): Buffer => value,
  },
} satisfies grpc.ServiceDefinition;
