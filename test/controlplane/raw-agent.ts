// A minimal discovery client speaking the wire protocol directly, so the
// control plane's server is tested independently of nodeagent/.
import * as grpc from '@grpc/grpc-js';
import {
  AsyncQueue,
  Digest,
  decodeResource,
  entriesOfResource,
  resourceKey,
} from '../../common/index.js';
import {
  MeshDiscoveryClient,
  PROTOCOL_VERSION,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
} from '../../proto/index.js';

export interface HeldResource {
  typeUrl: string;
  name: string;
  version: string;
  payload: Uint8Array;
}

export class RawAgent {
  readonly held = new Map<string, HeldResource>();
  readonly responses = new AsyncQueue<DeltaDiscoveryResponse>();
  readonly #next = this.responses[Symbol.asyncIterator]();
  readonly received: DeltaDiscoveryResponse[] = [];
  readonly #client: MeshDiscoveryClient;
  readonly #call: grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;

  constructor(
    address: string,
    readonly cluster: string,
    readonly node: string,
    opts: {
      protocolVersion?: number;
      initial?: HeldResource[];
      /** default plain text; an mTLS server needs this node's (or, in tests, another's) certificate */
      credentials?: grpc.ChannelCredentials;
      channelOptions?: grpc.ChannelOptions;
    } = {},
  ) {
    for (const r of opts.initial ?? []) this.held.set(resourceKey(r.typeUrl, r.name), r);
    this.#client = new MeshDiscoveryClient(
      address,
      opts.credentials ?? grpc.credentials.createInsecure(),
      opts.channelOptions ?? {},
    );
    this.#call = this.#client.deltaResources();
    this.#call.on('data', (r: DeltaDiscoveryResponse) => {
      this.received.push(r);
      this.responses.push(r);
    });
    this.#call.on('error', (err: Error) => this.responses.end(err));
    this.#call.on('end', () => this.responses.end());
    this.#call.write(
      req({
        node: { id: node, cluster },
        protocolVersion: opts.protocolVersion ?? PROTOCOL_VERSION,
        initialResourceVersions: [...this.held.values()].map((r) => ({
          typeUrl: r.typeUrl,
          name: r.name,
          version: r.version,
        })),
      }),
    );
  }

  /** Reads parts until a complete revision; applies it to `held`; returns the parts. */
  async nextRevision(): Promise<DeltaDiscoveryResponse[]> {
    const parts: DeltaDiscoveryResponse[] = [];
    for (;;) {
      const { value, done } = await this.#next.next();
      if (done) break;
      parts.push(value);
      if (value.revisionComplete) break;
    }
    if (!parts.at(-1)?.revisionComplete) throw new Error('stream ended mid-revision');
    for (const p of parts) {
      for (const name of p.removedResources) this.held.delete(resourceKey(p.typeUrl, name));
      for (const r of p.resources) {
        this.held.set(resourceKey(p.typeUrl, r.name), { typeUrl: p.typeUrl, ...r });
      }
    }
    return parts;
  }

  digest(): string {
    const d = new Digest();
    for (const r of this.held.values()) {
      for (const e of entriesOfResource(decodeResource(r.typeUrl, r.payload))) d.add(e);
    }
    return d.toString();
  }

  ack(parts: DeltaDiscoveryResponse[], digest = this.digest()): void {
    const last = parts.at(-1)!;
    this.#call.write(
      req({
        responseNonce: last.nonce,
        appliedRevision: last.meshRevision,
        applyDurationUs: 10,
        digest,
      }),
    );
  }

  nack(parts: DeltaDiscoveryResponse[], message: string, heldRevision: number): void {
    const last = parts.at(-1)!;
    this.#call.write(
      req({
        responseNonce: last.nonce,
        appliedRevision: heldRevision,
        errorDetail: { code: 8, message, resourceNames: last.resources.map((r) => r.name) },
        digest: this.digest(),
      }),
    );
  }

  close(): void {
    this.#call.end();
    this.#client.close();
  }
}

function req(p: Partial<DeltaDiscoveryRequest>): DeltaDiscoveryRequest {
  return {
    node: undefined,
    protocolVersion: 0,
    capacity: undefined,
    initialResourceVersions: [],
    responseNonce: '',
    errorDetail: undefined,
    appliedRevision: 0,
    applyDurationUs: 0,
    digest: '',
    verification: false,
    ...p,
  };
}
