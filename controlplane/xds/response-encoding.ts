import type * as grpc from '@grpc/grpc-js';
import type { EncodedResource } from '../../common/index.js';
import { DeltaDiscoveryResponse, MeshDiscoveryService } from '../../proto/index.js';

/** A DeltaDiscoveryResponse as it goes on the wire (see ResponseEncoder). */
export type EncodedResponse = Buffer;

/** The response fields that differ per node and per push; the resources are encoded apart. */
export type ResponseHead = Omit<DeltaDiscoveryResponse, 'resources' | 'removedResources'> & {
  /** shared between the nodes making the same step: never written to */
  removedResources: readonly string[];
};

/**
 * Encodes responses so that a resource's bytes are encoded once and the same
 * bytes go to every node: each `Resource` entry (field 2 of the response,
 * name, version and payload) is encoded once per resource version and kept
 * (weakly: old versions are collected). The head is split the same way: the
 * fields every node of a revision shares (type, revision, completeness,
 * version info — when nothing is removed) are encoded once per revision, and
 * only the nonce and trace context per node. Protobuf readers accept fields
 * in any order and repeated fields spread out, so the result decodes exactly
 * as `DeltaDiscoveryResponse.encode` of the whole message would.
 */
export class ResponseEncoder {
  readonly #entries = new WeakMap<EncodedResource, Buffer>();
  /** the shared heads of one revision (the newest encoded), by type, completeness and version info */
  readonly #heads = new Map<string, Buffer>();
  #headsRevision = -1;

  encode(head: ResponseHead, resources: readonly EncodedResource[]): EncodedResponse {
    const shared = this.#sharedHead(head);
    const own = ownHead(head);
    const chunks: Uint8Array[] = [shared, own];
    let length = shared.byteLength + own.byteLength;
    for (const r of resources) {
      const entry = this.#entry(r);
      chunks.push(entry);
      length += entry.byteLength;
    }
    return Buffer.concat(chunks, length);
  }

  /** Every head field but the nonce and trace context; kept for the revision when nothing is removed. */
  #sharedHead(head: ResponseHead): Buffer {
    if (head.removedResources.length > 0) return encodeSharedHead(head);
    if (head.meshRevision !== this.#headsRevision) {
      this.#heads.clear();
      this.#headsRevision = head.meshRevision;
    }
    const key = `${head.revisionComplete ? 1 : 0}\0${head.typeUrl}\0${head.systemVersionInfo}`;
    let bytes = this.#heads.get(key);
    if (bytes === undefined) {
      bytes = encodeSharedHead(head);
      this.#heads.set(key, bytes);
    }
    return bytes;
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

/** The head fields every node of a revision may share (all but the nonce and trace context). */
function encodeSharedHead(head: ResponseHead): Buffer {
  const fields = {
    ...EMPTY,
    typeUrl: head.typeUrl,
    removedResources: [...head.removedResources],
    meshRevision: head.meshRevision,
    revisionComplete: head.revisionComplete,
    systemVersionInfo: head.systemVersionInfo,
  };
  return asBuffer(DeltaDiscoveryResponse.encode(fields).finish());
}

/** Field 4 (nonce) as protobuf writes it: tag, length, UTF-8. */
const NONCE_TAG = (4 << 3) | 2;

/** The per-node head fields: the nonce, and the trace context when there is one. */
function ownHead(head: ResponseHead): Buffer {
  if (hasKeys(head.traceContext))
    return asBuffer(
      DeltaDiscoveryResponse.encode({
        ...EMPTY,
        nonce: head.nonce,
        traceContext: head.traceContext,
      }).finish(),
    );
  if (head.nonce === '') return EMPTY_BYTES;
  const length = Buffer.byteLength(head.nonce, 'utf8');
  if (length > 127)
    return asBuffer(DeltaDiscoveryResponse.encode({ ...EMPTY, nonce: head.nonce }).finish());
  const out = Buffer.allocUnsafe(2 + length);
  out[0] = NONCE_TAG;
  out[1] = length;
  out.write(head.nonce, 2, 'utf8');
  return out;
}

/** Whether `o` has an own key, without building the key list (once per push). */
function hasKeys(o: Readonly<Record<string, string>>): boolean {
  for (const k in o) if (Object.hasOwn(o, k)) return true;
  return false;
}

const EMPTY_BYTES = Buffer.alloc(0);

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
