import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { MeshError } from '../../common/index.js';
import { authorizeNodeStream } from '../../common/tls/index.js';
import type {
  FlowReport,
  FlowReportSummary,
  MeshFlowsServer,
  MeshObserveServer,
  ObservedFlow,
} from '../../proto/index.js';
import type { Logger } from '../../common/index.js';
import { enrichFlow, type PeerLookup } from './enrich.js';
import { matchesFlow, parseFlowFilter } from './filter.js';
import type { FlowBuffer } from './flow-buffer.js';

export interface FlowServiceDeps {
  buffer: FlowBuffer;
  lookup: PeerLookup;
  log: Logger;
  /** with mTLS: only a node's own certificate may report its flows */
  requireNodeCertificate: boolean;
}

function statusOf(err: unknown): grpc.StatusObject {
  const details = err instanceof Error ? err.message : String(err);
  const code =
    err instanceof MeshError
      ? err.code === 'UNAUTHENTICATED'
        ? grpc.status.UNAUTHENTICATED
        : err.code === 'PERMISSION_DENIED'
          ? grpc.status.PERMISSION_DENIED
          : err.code === 'VALIDATION'
            ? grpc.status.INVALID_ARGUMENT
            : grpc.status.INTERNAL
      : grpc.status.INTERNAL;
  return { code, details, metadata: new grpc.Metadata() };
}

/**
 * MeshFlows: one client stream per agent. The first report names the node
 * (checked against its certificate); every record is named from the mesh
 * state and appended to the buffer as it arrives.
 */
export function flowsService(deps: FlowServiceDeps): MeshFlowsServer {
  return {
    reportFlows: (call, callback) => {
      let node: { cluster: string; node: string } | undefined;
      let accepted = 0;
      let lost = 0;
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        deps.log.warn('flow report refused', { error: String(err) });
        callback(statusOf(err));
        call.destroy();
      };
      call.on('data', (report: FlowReport) => {
        if (failed) return;
        try {
          if (node === undefined) {
            if (!report.node?.id || !report.node.cluster)
              throw new MeshError(
                'VALIDATION',
                'the first flow report must name node.id and node.cluster',
              );
            if (deps.requireNodeCertificate)
              authorizeNodeStream(call.getAuthContext(), report.node.cluster, report.node.id);
            node = { cluster: report.node.cluster, node: report.node.id };
          }
          for (const r of report.flows)
            deps.buffer.append(enrichFlow(r, node, deps.lookup, deps.buffer.nextSequence()));
          accepted += report.flows.length;
          if (report.lost > 0) {
            lost += report.lost;
            deps.log.warn('an agent lost flow events', { ...node, lost: report.lost, total: lost });
          }
        } catch (err) {
          fail(err);
        }
      });
      call.on('end', () => {
        if (!failed) callback(null, { accepted } satisfies FlowReportSummary);
      });
      call.on('error', () => undefined); // the agent went away; nothing to answer
    },
  };
}

/** MeshObserve: the buffered flows that match, then (follow) new ones until the caller cancels. */
export function observeService(deps: Pick<FlowServiceDeps, 'buffer'>): MeshObserveServer {
  return {
    observe: (call) => {
      const parsed = parseFlowFilter(call.request);
      if (!parsed.ok) {
        call.emit('error', {
          code: grpc.status.INVALID_ARGUMENT,
          details: parsed.errors.join('; '),
        } satisfies Partial<grpc.StatusObject>);
        return;
      }
      const filter = parsed.value;
      const gone = new AbortController();
      call.on('cancelled', () => gone.abort());
      call.on('close', () => gone.abort());
      const { follow, last, noBuffered } = call.request;
      // Subscribe before reading the buffer, so nothing falls between the two.
      const live = follow ? deps.buffer.live({ signal: gone.signal }) : undefined;
      const write = async (f: ObservedFlow): Promise<void> => {
        if (!call.write(f)) await once(call, 'drain', { signal: gone.signal });
      };
      void (async () => {
        let seen = 0;
        if (!noBuffered) {
          let buffered = deps.buffer.recent().filter((f) => matchesFlow(f, filter));
          if (last > 0) buffered = buffered.slice(-last);
          for (const f of buffered) {
            if (gone.signal.aborted) return;
            await write(f);
            seen = f.sequence;
          }
        }
        if (live)
          for await (const f of live)
            if (f.sequence > seen && matchesFlow(f, filter)) await write(f);
        call.end();
      })().catch(() => {
        if (!gone.signal.aborted) call.end();
      });
    },
  };
}
