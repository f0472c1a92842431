/**
 * A recording of the mesh-state etcd revisions a benchmark produced, so the
 * snapshot side can be replayed on the same input without etcd, NATS or a
 * loaded machine deciding how events were batched (`services-replay`).
 * One JSON document per line: first `{"kind":"meta",...}`, then one
 * `{"kind":"batch","revision":R,"events":[...]}` per etcd revision, in order.
 */
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Etcd3 } from 'etcd3';
import { EtcdMeshStore, keyLayout, type RevisionBatch } from '../../controlplane/store/index.js';

export interface RecordingMeta {
  kind: 'meta';
  bench: string;
  /** batches after this revision are the measured phase (e.g. the churn) */
  measuredAfter: number;
  /** what the measured phase should be reported as */
  measuredEndpoints: number;
}

/**
 * Reads the whole mesh-state history of `endpoint` back from etcd (a watch
 * from the first revision) and writes it to `file`. Ends once no batch came
 * for `idleMs`. Needs etcd not to have compacted that history.
 */
export async function recordMeshHistory(
  endpoint: string,
  file: string,
  meta: Omit<RecordingMeta, 'kind'>,
  opts: { idleMs?: number; signal?: AbortSignal } = {},
): Promise<number> {
  // The initial rounds are revisions of several MB: more than gRPC's default 4 MiB per message.
  const etcd = new Etcd3({
    hosts: endpoint,
    grpcOptions: { 'grpc.max_receive_message_length': 512 * 1024 * 1024 },
  });
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const lines = [JSON.stringify({ kind: 'meta', ...meta } satisfies RecordingMeta)];
  let idle: NodeJS.Timeout | undefined;
  const arm = (ms: number): void => {
    clearTimeout(idle);
    idle = setTimeout(() => stop.abort(), ms);
  };
  try {
    // etcd takes a while to send a long history's first revisions.
    arm(60_000);
    for await (const batch of new EtcdMeshStore(etcd, keyLayout()).watch(0, { signal })) {
      lines.push(JSON.stringify({ kind: 'batch', ...batch }));
      arm(opts.idleMs ?? 2_000);
    }
  } finally {
    clearTimeout(idle);
    etcd.close();
  }
  await writeFile(file, `${lines.join('\n')}\n`);
  return lines.length - 1;
}

/** Reads a recording back: its meta line and its batches, in order. */
export async function readMeshRecording(
  file: string,
): Promise<{ meta: RecordingMeta; batches: RevisionBatch[] }> {
  let meta: RecordingMeta | undefined;
  const batches: RevisionBatch[] = [];
  for await (const line of createInterface({ input: createReadStream(file) })) {
    if (line === '') continue;
    const doc = JSON.parse(line) as RecordingMeta | ({ kind: 'batch' } & RevisionBatch);
    if (doc.kind === 'meta') meta = doc;
    else batches.push({ revision: doc.revision, events: doc.events });
  }
  if (!meta) throw new Error(`${file}: not a mesh recording (no meta line)`);
  return { meta, batches };
}
