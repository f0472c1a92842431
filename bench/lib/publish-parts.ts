/**
 * Publishes a change set as a cluster source does: one JetStream message per
 * object kind on `meshplane.events.<cluster>.<kind>`, with the change set's
 * id and part number in headers (see common's splitChangeSet). Resolves with
 * the last part's stream sequence.
 */
import { createHash } from 'node:crypto';
import { headers, type JetStreamClient } from 'nats';
import {
  CHANGE_SET_HEADER,
  CHANGE_SET_PART_HEADER,
  eventsSubject,
  formatPartHeader,
  splitChangeSet,
  type ChangeSetEvent,
} from '../../common/index.js';

export async function publishChangeSet(js: JetStreamClient, ev: ChangeSetEvent): Promise<number> {
  const parts = splitChangeSet(ev).map((p) => ({ ...p, payload: JSON.stringify(p.event) }));
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p.payload);
  const id = hash.digest('hex').slice(0, 32);
  let seq = 0;
  for (const p of parts) {
    const h = headers();
    h.set(CHANGE_SET_HEADER, id);
    h.set(CHANGE_SET_PART_HEADER, formatPartHeader(p.index, p.count));
    const ack = await js.publish(eventsSubject(ev.cluster.name, p.kind), p.payload, {
      headers: h,
      msgID: `${id}.${p.index}`,
    });
    seq = ack.seq;
  }
  return seq;
}
