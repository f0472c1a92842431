import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { MeshError, type Clock } from '../../common/index.js';
import {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_HEADER,
  type DeltaDiscoveryRequest,
  type DeltaDiscoveryResponse,
  type MeshDiscoveryClient,
} from '../../proto/index.js';
import { ProtocolMismatchError, StreamError } from './errors.js';
import { RevisionAssembler, type AssembledRevision } from './revision-assembler.js';

/** The open stream as the agent sees it: writes are dropped once it has ended. */
export interface SessionStream {
  send(request: DeltaDiscoveryRequest): void;
  readonly open: boolean;
}

export interface SessionOptions {
  client: MeshDiscoveryClient;
  /** node, protocol version, capacity and held versions */
  first: DeltaDiscoveryRequest;
  monotonic: Clock;
  /** aborting cancels the stream */
  signal: AbortSignal;
  /** the control plane answered with our protocol version */
  onOpen(stream: SessionStream): void;
  /** a whole revision arrived; the next part is read only after this settles */
  onRevision(revision: AssembledRevision, stream: SessionStream): Promise<void>;
}

export interface SessionEnd {
  /** why it ended; undefined when the agent stopped it */
  error: MeshError | undefined;
  /** at least one response was received (the caller then resets its backoff) */
  progressed: boolean;
}

/**
 * One DeltaResources stream from open to end. Never rejects: every way a
 * stream ends becomes a SessionEnd. Parts of an incomplete revision die with
 * the session.
 */
export async function runSession(opts: SessionOptions): Promise<SessionEnd> {
  const { signal } = opts;
  if (signal.aborted) return { error: undefined, progressed: false };
  const call = opts.client.deltaResources();
  let open = true;
  let accepted = false;
  let mismatch: ProtocolMismatchError | undefined;
  let progressed = false;
  const stream: SessionStream = {
    send: (request) => {
      if (open) call.write(request);
    },
    get open() {
      return open;
    },
  };
  const cancel = (): void => call.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  // The iterator below sees errors too; this keeps a late error (after the
  // loop has left) from becoming an uncaught 'error' event.
  call.on('error', () => undefined);
  call.on('metadata', (md: Metadata) => {
    mismatch = checkVersion(md);
    if (mismatch !== undefined) {
      call.cancel();
      return;
    }
    accepted = true;
    opts.onOpen(stream);
  });

  const assembler = new RevisionAssembler();
  try {
    call.write(opts.first);
    for await (const part of call as AsyncIterable<DeltaDiscoveryResponse>) {
      // Stamp receipt first: the control plane keeps one revision in flight,
      // so a part is read as soon as it arrives.
      const receivedAt = opts.monotonic.now();
      // Nothing from a control plane that speaks another protocol is applied.
      if (!accepted) continue;
      progressed = true;
      const revision = assembler.push(part, receivedAt);
      if (revision !== undefined) await opts.onRevision(revision, stream);
    }
    return {
      error:
        mismatch ?? new StreamError('UNAVAILABLE', 'control plane ended the stream', GrpcStatus.OK),
      progressed,
    };
  } catch (err) {
    if (signal.aborted) return { error: undefined, progressed };
    return { error: classify(err, mismatch), progressed };
  } finally {
    open = false;
    signal.removeEventListener('abort', cancel);
    // Ends the call if we are leaving for our own reasons; a no-op after a status.
    call.cancel();
  }
}

function versionOf(md: Metadata | undefined): number | undefined {
  const value = md?.get(PROTOCOL_VERSION_HEADER)[0];
  if (value === undefined) return undefined;
  const n = Number(value.toString());
  return Number.isInteger(n) ? n : undefined;
}

function checkVersion(md: Metadata): ProtocolMismatchError | undefined {
  const server = versionOf(md);
  if (server === PROTOCOL_VERSION) return undefined;
  const message =
    server === undefined
      ? `control plane did not announce its protocol version (response header ${PROTOCOL_VERSION_HEADER}), this agent speaks ${PROTOCOL_VERSION}`
      : `control plane speaks protocol ${server}, this agent speaks ${PROTOCOL_VERSION}`;
  return new ProtocolMismatchError(message, server, PROTOCOL_VERSION);
}

function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === 'number' &&
    'details' in err
  );
}

function classify(err: unknown, mismatch: ProtocolMismatchError | undefined): MeshError {
  if (isServiceError(err)) {
    // A refusal may come as trailers only: the version header is then in the trailers.
    const found = mismatch ?? checkVersion(err.metadata ?? new Metadata());
    if (err.code === GrpcStatus.FAILED_PRECONDITION) {
      // The contract: the control plane refuses an agent of another protocol this way.
      const server = versionOf(err.metadata) ?? found?.serverVersion;
      const prefix = found?.serverVersion !== undefined ? `${found.message}; ` : '';
      return new ProtocolMismatchError(
        `${prefix}control plane refused the stream: ${err.details}`,
        server,
        PROTOCOL_VERSION,
        {
          cause: err,
        },
      );
    }
    if (mismatch !== undefined) return mismatch;
    if (found?.serverVersion !== undefined) return found;
    if (err.code === GrpcStatus.PERMISSION_DENIED || err.code === GrpcStatus.UNAUTHENTICATED) {
      // Our certificate is not good for this node: retrying fast cannot fix it.
      return new StreamError(
        err.code === GrpcStatus.PERMISSION_DENIED ? 'PERMISSION_DENIED' : 'UNAUTHENTICATED',
        `control plane refused this agent: ${err.details}`,
        err.code,
        { cause: err },
      );
    }
    return new StreamError(
      'UNAVAILABLE',
      `discovery stream failed: ${GrpcStatus[err.code] ?? err.code}: ${err.details}`,
      err.code,
      { cause: err },
    );
  }
  if (mismatch !== undefined) return mismatch;
  if (err instanceof MeshError) return err;
  return new MeshError('INTERNAL', `discovery stream failed: ${String(err)}`, { cause: err });
}
