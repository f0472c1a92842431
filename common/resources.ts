import { createHash } from 'node:crypto';
import {
  type EndpointPolicy,
  EndpointPolicyPayload,
  IpcacheShard,
  ServiceImport,
  TYPE_ENDPOINT,
  TYPE_IPCACHE,
  TYPE_SERVICE,
} from '../proto/index.js';
import { entriesOfEndpoint, entriesOfIpcacheShard, entriesOfService } from './digest.js';
import { MeshError } from './errors.js';
import { packPolicyEntries, unpackPolicyEntries } from './policy-entries.js';
import { WireReader } from './wire-reader.js';

/** Resource type URLs, in the order a revision's parts are sent (ipcache first). */
export const RESOURCE_TYPES = [TYPE_IPCACHE, TYPE_SERVICE, TYPE_ENDPOINT] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export type ResourceValue =
  | { typeUrl: typeof TYPE_IPCACHE; value: IpcacheShard }
  | { typeUrl: typeof TYPE_ENDPOINT; value: EndpointPolicy }
  | { typeUrl: typeof TYPE_SERVICE; value: ServiceImport };

/** An encoded resource: immutable; the same bytes go to every node that needs it. */
export interface EncodedResource {
  readonly typeUrl: ResourceType;
  readonly name: string;
  /** content hash of payload: stable across processes and restarts */
  readonly version: string;
  readonly payload: Buffer;
}

export function resourceVersion(payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('hex').slice(0, 16);
}

export function encodeResource(name: string, r: ResourceValue): EncodedResource {
  let bytes: Uint8Array;
  switch (r.typeUrl) {
    case TYPE_IPCACHE:
      bytes = IpcacheShard.encode(r.value).finish();
      break;
    case TYPE_ENDPOINT:
      bytes = EndpointPolicyPayload.encode({
        endpoint: { ...r.value, entries: [] },
        entries: packPolicyEntries(r.value.entries, `endpoint policy "${name}"`),
      }).finish();
      break;
    case TYPE_SERVICE:
      bytes = ServiceImport.encode(r.value).finish();
      break;
  }
  // A view, not a copy: grpc-js wants Buffers for bytes fields.
  const payload = asBuffer(bytes);
  return { typeUrl: r.typeUrl, name, version: resourceVersion(payload), payload };
}

export function isResourceType(typeUrl: string): typeUrl is ResourceType {
  return (RESOURCE_TYPES as readonly string[]).includes(typeUrl);
}

export function decodeResource(typeUrl: string, payload: Uint8Array): ResourceValue {
  try {
    switch (typeUrl) {
      case TYPE_IPCACHE:
        return { typeUrl, value: IpcacheShard.decode(new WireReader(payload)) };
      case TYPE_ENDPOINT:
        return { typeUrl, value: decodeEndpointPolicy(payload) };
      case TYPE_SERVICE:
        return { typeUrl, value: ServiceImport.decode(new WireReader(payload)) };
    }
  } catch (err) {
    throw new MeshError('VALIDATION', `cannot decode ${typeUrl} resource`, { cause: err });
  }
  throw new MeshError('VALIDATION', `unknown resource type ${typeUrl}`);
}

/** A view of `bytes` as a Buffer (ts-proto's type for bytes fields), no copy. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An EndpointPolicyPayload back into the EndpointPolicy it carries, its entries unpacked. */
function decodeEndpointPolicy(payload: Uint8Array): EndpointPolicy {
  const { endpoint, entries } = EndpointPolicyPayload.decode(new WireReader(payload));
  if (endpoint === undefined) throw new MeshError('VALIDATION', 'endpoint is missing');
  if (endpoint.entries.length > 0)
    throw new MeshError('VALIDATION', 'endpoint.entries must be empty: entries travel packed');
  endpoint.entries = unpackPolicyEntries(entries);
  return endpoint;
}

/** The digest entries a resource contributes to a node's logical state. */
export function entriesOfResource(r: ResourceValue): string[] {
  switch (r.typeUrl) {
    case TYPE_IPCACHE:
      return entriesOfIpcacheShard(r.value);
    case TYPE_ENDPOINT:
      return entriesOfEndpoint(r.value);
    case TYPE_SERVICE:
      return entriesOfService(r.value);
  }
}

/** `typeUrl|name`: the key of a resource within one node's state. */
export function resourceKey(typeUrl: string, name: string): string {
  return `${typeUrl}|${name}`;
}
