import type { JetStreamManager, NatsConnection, NatsError } from 'nats';
import { StorageType, headers as natsHeaders } from 'nats';
import type { SourceApplyReply, SourceApplyRequest } from '../../../common/index.js';
import {
  CHANGE_SET_HEADER,
  CHANGE_SET_PART_HEADER,
  EVENTS_STREAM,
  MeshError,
  formatPartHeader,
  SUBJECT_APPLY_PREFIX,
  SUBJECT_EVENTS_PREFIX,
  SUBJECT_RESYNC_PREFIX,
  TRACEPARENT_HEADER,
  TRACE_LINKS_HEADER,
} from '../../../common/index.js';
import { parseApplyRequest } from './apply-request.js';

/**
 * Where a cluster source sends what it sees. Owned by the source; the NATS
 * adapter below is the real one, tests may pass a fake.
 */
export interface EventSink {
  /** Makes sure the events stream exists. Idempotent. */
  ensureStream(): Promise<void>;
  /**
   * A JetStream publish that resolves with the stream sequence once the
   * PubAck arrived. `part`: which change set the message is a part of, and
   * which part (headers the control plane reassembles the change set by).
   */
  publishEvent(
    subject: string,
    payload: Uint8Array,
    msgID: string,
    traceparent?: string,
    part?: EventPart,
    /** traceparents of further callers the change set carries (TRACE_LINKS_HEADER) */
    traceLinks?: readonly string[],
  ): Promise<number>;
  /** Core NATS, fire and forget. */
  publishHealth(subject: string, payload: Uint8Array): void;
  /** The largest message the server takes. */
  maxPayload(): number;
  /**
   * Calls `onRequest` whenever the control plane asks this cluster's source
   * to republish its full state (core NATS `meshplane.resync.<cluster>`,
   * sent when the cluster joins). Returns an unsubscribe function.
   */
  onResyncRequest?(cluster: string, onRequest: (traceparent?: string) => void): () => void;
  /**
   * Serves the control plane's requests to write a change set into this
   * cluster's folder (core NATS request/reply on `meshplane.apply.<cluster>`),
   * answering each with `handle`'s reply. `traceparent` is the request's W3C
   * trace context header (the caller's): the change set is published with it.
   * Returns an unsubscribe function.
   */
  onApplyRequest?(
    cluster: string,
    handle: (request: SourceApplyRequest, traceparent?: string) => Promise<SourceApplyReply>,
  ): () => void;
}

/** One part of a change set split by kind (see splitChangeSet). */
export interface EventPart {
  /** the change set's id, the same on each of its parts */
  changeSet: string;
  /** 1-based */
  index: number;
  count: number;
}

// JetStream API error codes (nats-server's errors.json).
const JS_STREAM_NOT_FOUND = 10059;
const JS_STREAM_NAME_IN_USE = 10058;

function apiErrorCode(err: unknown): number | undefined {
  return (err as Partial<NatsError> | undefined)?.api_error?.err_code;
}

/**
 * Creates MESHPLANE_EVENTS (file storage, `meshplane.events.>`) only when it is
 * missing: the control plane may own a richer configuration, and a source
 * must not fight over it. Losing a creation race to another process is fine.
 */
export async function ensureEventsStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.info(EVENTS_STREAM);
    return;
  } catch (err) {
    if (apiErrorCode(err) !== JS_STREAM_NOT_FOUND) throw err;
  }
  try {
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: [`${SUBJECT_EVENTS_PREFIX}.>`],
      storage: StorageType.File,
    });
  } catch (err) {
    if (apiErrorCode(err) !== JS_STREAM_NAME_IN_USE) throw err;
  }
}

export interface NatsSinkOptions {
  /** how long to wait for a PubAck; default 5 s */
  ackTimeoutMs?: number;
  /**
   * Create the events stream when it is missing (default true). False where
   * the control plane owns the stream and the server lets a source publish
   * only its own subjects (no JetStream API at all): a publish before the
   * stream exists then fails with "no responders" and is retried.
   */
  createStream?: boolean;
}

/** The EventSink on a NATS connection the caller owns (and closes). */
export function natsEventSink(nc: NatsConnection, opts: NatsSinkOptions = {}): EventSink {
  const timeout = opts.ackTimeoutMs ?? 5_000;
  const createStream = opts.createStream ?? true;
  return {
    async ensureStream() {
      if (!createStream) return;
      await ensureEventsStream(await nc.jetstreamManager({ timeout }));
    },
    async publishEvent(subject, payload, msgID, traceparent, part, traceLinks) {
      const h = natsHeaders();
      if (traceparent) h.set(TRACEPARENT_HEADER, traceparent);
      if (traceLinks && traceLinks.length > 0) h.set(TRACE_LINKS_HEADER, traceLinks.join(','));
      if (part) {
        h.set(CHANGE_SET_HEADER, part.changeSet);
        h.set(CHANGE_SET_PART_HEADER, formatPartHeader(part.index, part.count));
      }
      const ack = await nc
        .jetstream({ timeout })
        .publish(subject, payload, { msgID, timeout, headers: h });
      if (ack.stream !== EVENTS_STREAM) {
        throw new MeshError(
          'INTERNAL',
          `${subject} was stored in stream ${ack.stream}, not ${EVENTS_STREAM}`,
        );
      }
      return ack.seq;
    },
    publishHealth(subject, payload) {
      nc.publish(subject, payload);
    },
    maxPayload() {
      return nc.info?.max_payload ?? 1024 * 1024;
    },
    onResyncRequest(cluster, onRequest) {
      const sub = nc.subscribe(`${SUBJECT_RESYNC_PREFIX}.${cluster}`, {
        callback: (err, msg) => {
          if (err) return;
          // The joining caller's context: the full change set is published with it.
          onRequest(msg.headers?.get(TRACEPARENT_HEADER) || undefined);
        },
      });
      return () => sub.unsubscribe();
    },
    onApplyRequest(cluster, handle) {
      const encode = (reply: SourceApplyReply): Uint8Array =>
        new TextEncoder().encode(JSON.stringify(reply));
      const sub = nc.subscribe(`${SUBJECT_APPLY_PREFIX}.${cluster}`, {
        callback: (err, msg) => {
          if (err) return;
          const request = parseApplyRequest(msg.data);
          if ('errors' in request) {
            msg.respond(encode(request));
            return;
          }
          const traceparent = msg.headers?.get(TRACEPARENT_HEADER) || undefined;
          void handle(request, traceparent).then(
            (reply) => msg.respond(encode(reply)),
            (err: unknown) =>
              msg.respond(
                encode({
                  ok: false,
                  errors: [
                    {
                      message: `the source failed: ${err instanceof Error ? err.message : String(err)}`,
                      severity: 'error',
                    },
                  ],
                }),
              ),
          );
        },
      });
      return () => sub.unsubscribe();
    },
  };
}
