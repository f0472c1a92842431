import * as grpc from '@grpc/grpc-js';
import { MeshObserveClient, ObserveRequest, type ObservedFlow } from '../proto/index.js';
import { adminTransport } from './admin-tls.js';
import { CliExit, EXIT } from './exit-codes.js';
import type { MeshTarget } from './state-dir.js';

/**
 * The control plane's flows (MeshObserve.Observe) as an async iterable: the
 * buffered ones that match, then with `follow` new ones until `signal`
 * aborts (which ends the iteration quietly). An unreachable control plane is
 * exit code 3; a refused filter exit code 2.
 */
export async function* observeFlows(
  target: MeshTarget,
  req: Partial<ObserveRequest>,
  opts: { signal?: AbortSignal } = {},
): AsyncGenerator<ObservedFlow> {
  const transport = await adminTransport(target.stateDir);
  const client = new MeshObserveClient(target.address, transport.credentials, transport.options);
  const call = client.observe(ObserveRequest.create(req), {
    // Without follow the answer is the buffer: bounded, so a deadline is fair.
    ...(req.follow ? {} : { deadline: Date.now() + 30_000 }),
  });
  const onAbort = (): void => call.cancel();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const f of call as AsyncIterable<ObservedFlow>) yield f;
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.CANCELLED && opts.signal?.aborted) return;
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      const plain = transport.plainTextBecause;
      throw new CliExit(
        EXIT.unreachable,
        `control plane at ${target.address} is unreachable: ${e.details || e.message}${plain ? ` (meshctl spoke plain text: ${plain})` : ''}`,
      );
    }
    if (e.code === grpc.status.INVALID_ARGUMENT) throw new CliExit(EXIT.usage, e.details);
    if (e.code === grpc.status.PERMISSION_DENIED || e.code === grpc.status.UNAUTHENTICATED)
      throw new CliExit(EXIT.usage, `control plane at ${target.address} refused: ${e.details}`);
    throw err;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    call.cancel();
    client.close();
  }
}
