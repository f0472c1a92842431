// Stands in for the control plane: a real gRPC server implementing
// MeshDiscovery whose every response is scripted by the test.
import * as grpc from '@grpc/grpc-js';
import {
  DeltaDiscoveryResponse,
  MeshDiscoveryService,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_HEADER,
  type DeltaDiscoveryRequest,
  type MeshDiscoveryServer,
} from '../../proto/index.js';
import { AsyncQueue } from './async-queue.js';

export interface ScriptedOptions {
  /** version in the response header; null omits the header */
  protocolVersion?: number | null;
  /** refuse every stream at once with this status (trailers only) */
  refuse?: { code: grpc.status; details: string };
}

export class ScriptedStream {
  readonly requests = new AsyncQueue<DeltaDiscoveryRequest>();
  readonly #call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>;
  #ended = false;
  readonly closed: Promise<void>;

  constructor(call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse>) {
    this.#call = call;
    call.on('data', (req: DeltaDiscoveryRequest) => this.requests.push(req));
    this.closed = new Promise((resolve) => {
      call.on('end', () => resolve());
      call.on('cancelled', () => resolve());
      call.on('error', () => resolve());
    });
  }

  nextRequest(timeoutMs = 5000): Promise<DeltaDiscoveryRequest> {
    return this.requests.next(timeoutMs, 'a request from the agent');
  }

  send(part: Partial<DeltaDiscoveryResponse>): void {
    this.#call.write(DeltaDiscoveryResponse.fromPartial(part));
  }

  /** Ends the stream with status OK (the control plane went away cleanly). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#call.end();
  }

  fail(code: grpc.status, details: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#call.emit('error', { code, details });
  }
}

export class ScriptedControlPlane {
  readonly streams = new AsyncQueue<ScriptedStream>();
  readonly #server = new grpc.Server();
  readonly #open = new Set<ScriptedStream>();
  #address = '';

  private constructor() {}

  get address(): string {
    return this.#address;
  }

  static async start(opts: ScriptedOptions = {}): Promise<ScriptedControlPlane> {
    const plane = new ScriptedControlPlane();
    const server = plane.#server;
    const impl: MeshDiscoveryServer = {
      deltaResources: (call) => {
        if (opts.refuse !== undefined) {
          const trailers = new grpc.Metadata();
          if (opts.protocolVersion !== null) {
            trailers.set(PROTOCOL_VERSION_HEADER, String(opts.protocolVersion ?? PROTOCOL_VERSION));
          }
          call.emit('error', { ...opts.refuse, metadata: trailers });
          return;
        }
        if (opts.protocolVersion !== null) {
          const md = new grpc.Metadata();
          md.set(PROTOCOL_VERSION_HEADER, String(opts.protocolVersion ?? PROTOCOL_VERSION));
          call.sendMetadata(md);
        }
        const stream = new ScriptedStream(call);
        plane.#track(stream);
      },
    };
    server.addService(MeshDiscoveryService, impl);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    plane.#address = `127.0.0.1:${port}`;
    return plane;
  }

  #track(stream: ScriptedStream): void {
    this.#open.add(stream);
    this.streams.push(stream);
  }

  nextStream(timeoutMs = 5000): Promise<ScriptedStream> {
    return this.streams.next(timeoutMs, 'the agent to open a stream');
  }

  async close(): Promise<void> {
    for (const s of this.#open) s.end();
    this.#server.forceShutdown();
    await Promise.resolve();
  }
}
