// A node's details and its recent history, fetched when the node is chosen
// and again when its row changes.
import { formatDuration } from '../page-model.js';
import type { NodeHistoryEntry } from '../source.js';
import { NODE_STATE_CODES, type WireNode } from '../wire.js';

interface NodeResponse {
  node: WireNode;
  history: NodeHistoryEntry[];
}

const cell = (text: string): HTMLTableCellElement => {
  const td = document.createElement('td');
  td.textContent = text;
  return td;
};

export async function showNode(
  section: HTMLElement,
  cluster: string,
  node: string,
  now: number,
): Promise<void> {
  const res = await fetch(
    `/api/node?cluster=${encodeURIComponent(cluster)}&node=${encodeURIComponent(node)}`,
  );
  section.hidden = false;
  const title = document.createElement('h2');
  title.textContent = `Node ${cluster}/${node}`;
  if (!res.ok) {
    const p = document.createElement('p');
    p.textContent = ((await res.json()) as { error?: string }).error ?? `HTTP ${res.status}`;
    section.replaceChildren(title, p);
    return;
  }
  const { node: n, history } = (await res.json()) as NodeResponse;
  const facts = document.createElement('table');
  const since =
    n[5] > 0 ? `${new Date(n[5]).toLocaleTimeString()} (${formatDuration(now - n[5])} ago)` : '–';
  for (const [k, v] of [
    ['state', NODE_STATE_CODES[n[2]]],
    ['acked revision', String(n[3])],
    ['synced revision', String(n[4])],
    ['in this state since', since],
    ['error', n[7] || '–'],
  ] as const) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = k;
    tr.append(th, cell(v));
    facts.append(tr);
  }
  const hist = document.createElement('table');
  hist.dataset['testid'] = 'node-history';
  const head = document.createElement('tr');
  for (const h of ['revision', 'answer', 'at', 'commit → ACK', 'apply', 'message']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  hist.append(head);
  for (const e of history) {
    const tr = document.createElement('tr');
    tr.append(
      cell(String(e.revision)),
      cell(e.outcome === 'ack' ? 'ACK' : 'NACK'),
      cell(new Date(e.at).toLocaleTimeString()),
      cell(e.latencyMs === undefined ? '–' : formatDuration(e.latencyMs)),
      cell(e.applyMs === undefined ? '–' : formatDuration(e.applyMs)),
      cell(e.message ?? ''),
    );
    hist.append(tr);
  }
  const sub = document.createElement('h3');
  sub.textContent =
    history.length > 0 ? `Recent answers (newest first)` : 'No recent answers kept for this node';
  section.replaceChildren(title, facts, sub, hist);
}
