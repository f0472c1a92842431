// Draws the wire state into the page. Node cells are kept per node and
// updated in place; the small tables are redrawn on each update.
import {
  bucketQuantile,
  clusterSummaries,
  formatDuration,
  laggards,
  revisionProgress,
} from '../page-model.js';
import {
  NODE_STATE_CODES,
  SYNCED_AT_LATEST,
  nodeKey,
  syncedRevisionOf,
  type WireNode,
  type WireState,
} from '../wire.js';

const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function byId<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page is missing #${id}`);
  return e as T;
}

export class DashboardView {
  readonly #cells = new Map<string, HTMLButtonElement>();
  /** the row each cell shows */
  readonly #rows = new WeakMap<HTMLButtonElement, WireNode>();
  readonly #counts = new Map<string, HTMLElement>();
  #clusterNames = '';
  #selected: string | undefined;
  /** the mesh revision of the state drawn last */
  #latest = 0;
  readonly onSelect: (cluster: string, node: string) => void;

  constructor(onSelect: (cluster: string, node: string) => void) {
    this.onSelect = onSelect;
    byId('legend').replaceChildren(
      ...NODE_STATE_CODES.map((s) => el('span', {}, el('i', { class: `s-${s}` }), s)),
    );
  }

  setConnection(live: boolean): void {
    const c = byId('connection');
    c.textContent = live ? 'live' : 'reconnecting…';
    c.classList.toggle('live', live);
  }

  /** Everything from scratch (a new `state`). */
  renderAll(state: WireState, now: number): void {
    this.#clusterNames = '';
    this.updateNodes(state, state.nodes);
    this.renderRevisions(state, now);
    this.renderErrors(state);
    this.renderAges(state, now);
  }

  /** Cells of `changed` nodes, and every cluster's counts. */
  updateNodes(state: WireState, changed: readonly WireNode[]): void {
    this.#latest = state.revision;
    const summaries = clusterSummaries(state);
    const names = summaries.map((c) => `${c.name}:${c.nodes.length}`).join(',');
    if (
      names !== this.#clusterNames ||
      changed.some((n) => !this.#cells.has(nodeKey(n[0], n[1])))
    ) {
      this.#clusterNames = names;
      this.#buildClusters(summaries);
    } else {
      for (const n of changed) this.#paintCell(this.#cells.get(nodeKey(n[0], n[1]))!, n);
    }
    for (const c of summaries) {
      this.#counts
        .get(c.name)
        ?.replaceChildren(
          ...NODE_STATE_CODES.map((s, i) =>
            el(
              'span',
              { 'data-state': s, 'data-count': String(c.counts[i]) },
              `${s} ${c.counts[i]}`,
            ),
          ),
        );
    }
  }

  #buildClusters(summaries: ReturnType<typeof clusterSummaries>): void {
    this.#cells.clear();
    this.#counts.clear();
    const cards = summaries.map((c) => {
      const counts = el('div', { class: 'counts' });
      this.#counts.set(c.name, counts);
      const grid = el('div', { class: 'grid', role: 'list' });
      for (const n of c.nodes) {
        const cell = el('button', { class: 'cell', type: 'button', role: 'listitem' });
        cell.addEventListener('click', () => this.onSelect(n[0], n[1]));
        this.#paintCell(cell, n);
        this.#cells.set(nodeKey(n[0], n[1]), cell);
        grid.append(cell);
      }
      return el(
        'div',
        { class: 'cluster', 'data-cluster': c.name },
        el('h3', {}, `${c.name} · ${c.nodes.length} nodes`),
        counts,
        grid,
      );
    });
    byId('clusters').replaceChildren(...cards);
    if (this.#selected) this.#cells.get(this.#selected)?.classList.add('selected');
  }

  /**
   * Writes only what changed since the cell's last row: with 1,000s of nodes
   * every attribute write costs style work. The tooltip is built on hover.
   */
  #paintCell(cell: HTMLButtonElement, n: WireNode): void {
    const old = this.#rows.get(cell);
    this.#rows.set(cell, n);
    const state = NODE_STATE_CODES[n[2]];
    if (old === undefined) {
      const key = nodeKey(n[0], n[1]);
      cell.dataset['node'] = key;
      const tip = (): void => {
        const r = this.#rows.get(cell)!;
        cell.title = `${key}: ${NODE_STATE_CODES[r[2]]}, acked ${r[3]}, synced ${syncedRevisionOf(r, this.#latest)}${r[7] ? `\n${r[7]}` : ''}`;
      };
      cell.addEventListener('mouseenter', tip);
      cell.addEventListener('focus', tip);
    }
    if (old?.[2] !== n[2]) {
      cell.classList.remove(`s-${old ? NODE_STATE_CODES[old[2]] : ''}`);
      cell.classList.add(`s-${state}`);
      cell.dataset['state'] = state;
    }
    if (old?.[3] !== n[3]) cell.dataset['acked'] = String(n[3]);
    // In sync means synced at the mesh revision in the headline: no per-cell number to rewrite.
    if (old?.[4] !== n[4]) {
      if (n[4] === SYNCED_AT_LATEST) delete cell.dataset['synced'];
      else cell.dataset['synced'] = String(n[4]);
    }
  }

  select(key: string | undefined): void {
    if (this.#selected) this.#cells.get(this.#selected)?.classList.remove('selected');
    this.#selected = key;
    if (key) this.#cells.get(key)?.classList.add('selected');
  }

  /** Revision table and heatmap. */
  renderRevisions(state: WireState, now: number): void {
    const rows = state.revisions.slice(0, 12).map((r) => {
      const p = revisionProgress(r, now);
      const pct = p.affected === 0 ? 100 : (100 * p.synced) / p.affected;
      const fill = el('i');
      // CSSOM, not a style attribute: the page's CSP forbids inline styles.
      fill.style.width = `${pct.toFixed(1)}%`;
      const bar = el('div', { class: 'bar' }, fill, el('b', {}, `${p.synced} of ${p.affected}`));
      const p50 = bucketQuantile(state.bucketsMs, r[7], 0.5);
      const p99 = bucketQuantile(state.bucketsMs, r[7], 0.99);
      const q = (v: number | undefined): string =>
        v === undefined ? '–' : `≤ ${formatDuration(v)}`;
      return el(
        'tr',
        {
          class: p.converged ? 'converged' : 'converging',
          'data-revision': String(p.revision),
          'data-affected': String(p.affected),
          'data-synced': String(p.synced),
          'data-nacked': String(p.nacked),
          'data-converged': String(p.converged),
        },
        el('td', {}, String(p.revision)),
        el('td', { 'data-age-from': String(p.commitTime) }, formatDuration(now - p.commitTime)),
        el('td', { title: `${p.synced} of ${p.affected} affected nodes synced` }, bar),
        el('td', {}, String(p.nacked)),
        el(
          'td',
          {},
          p.acks === 0
            ? '–'
            : p.converged
              ? formatDuration(p.skewWindowMs)
              : `${formatDuration(p.skewWindowMs)}, open ${formatDuration(p.openForMs ?? 0)}`,
        ),
        el('td', {}, `${q(p50)} / ${q(p99)}`),
      );
    });
    const body = byId<HTMLTableElement>('revisions').tBodies[0]!;
    body.replaceChildren(
      ...(rows.length > 0
        ? rows
        : [el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'no revisions yet'))]),
    );
    this.#renderHeatmap(state);
  }

  #renderHeatmap(state: WireState): void {
    const revs = [...state.revisions].reverse();
    const buckets = state.bucketsMs.length + 1;
    const cw = 14;
    const ch = 10;
    const left = 58;
    // A fixed number of columns, newest on the right, so a short history is not blown up.
    const slots = Math.max(revs.length, 40);
    const x0 = left + (slots - revs.length) * cw;
    const width = left + slots * cw + 4;
    const height = buckets * ch + 16;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', 'commit to ACK latency buckets per revision');
    const text = (x: number, y: number, s: string, anchor = 'end'): void => {
      const t = document.createElementNS(SVG, 'text');
      t.setAttribute('x', String(x));
      t.setAttribute('y', String(y));
      t.setAttribute('text-anchor', anchor);
      t.textContent = s;
      svg.append(t);
    };
    for (let b = 0; b < buckets; b += 2) {
      const bound = state.bucketsMs[b];
      text(
        left - 4,
        height - 16 - b * ch - 2,
        bound === undefined
          ? `> ${formatDuration(state.bucketsMs.at(-1) ?? 0)}`
          : `≤ ${formatDuration(bound)}`,
      );
    }
    revs.forEach((r, i) => {
      const max = Math.max(1, ...r[7]);
      r[7].forEach((count, b) => {
        if (count === 0) return;
        const rect = document.createElementNS(SVG, 'rect');
        rect.setAttribute('x', String(x0 + i * cw));
        rect.setAttribute('y', String(height - 16 - (b + 1) * ch));
        rect.setAttribute('width', String(cw - 1));
        rect.setAttribute('height', String(ch - 1));
        rect.setAttribute(
          'fill',
          `rgba(46, 110, 214, ${(0.15 + (0.85 * count) / max).toFixed(2)})`,
        );
        const title = document.createElementNS(SVG, 'title');
        title.textContent = `revision ${r[0]}: ${count} node(s) ${b < state.bucketsMs.length ? `≤ ${formatDuration(state.bucketsMs[b]!)}` : 'slower'}`;
        rect.append(title);
        svg.append(rect);
      });
    });
    if (revs.length > 0) {
      text(x0, height - 3, `r${revs[0]![0]}`, 'start');
      text(width - 4, height - 3, `r${revs.at(-1)![0]}`);
    }
    byId('heatmap').replaceChildren(svg);
  }

  renderErrors(state: WireState): void {
    const items = state.errors.map(([at, cluster, node, kind, message]) =>
      el(
        'li',
        { 'data-node': nodeKey(cluster, node), 'data-state': kind },
        el('span', { class: `dot s-${kind}` }),
        el('b', {}, `${cluster}/${node}`),
        ` ${kind} at ${new Date(at).toLocaleTimeString()}: `,
        el('span', { class: 'error-text' }, message),
      ),
    );
    byId('errors').replaceChildren(
      ...(items.length > 0 ? items : [el('li', { class: 'muted' }, 'none')]),
    );
  }

  /** Everything that depends on the clock: headline, laggards, revision ages. */
  renderAges(state: WireState, now: number): void {
    const total = state.nodes.length;
    const inSync = state.nodes.filter((n) => n[2] === 0).length;
    byId('headline').replaceChildren(
      'mesh revision ',
      el('b', { 'data-testid': 'mesh-revision' }, String(state.revision)),
      state.commitTime > 0
        ? ` · committed ${formatDuration(now - state.commitTime)} ago · `
        : ' · ',
      el('b', { 'data-testid': 'in-sync-count' }, String(inSync)),
      ` of ${total} nodes in sync`,
    );
    const rows = laggards(state, now, 10).map((l) =>
      el(
        'tr',
        { 'data-node': nodeKey(l.cluster, l.node), 'data-state': l.state },
        el('td', {}, `${l.cluster}/${l.node}`),
        el('td', {}, el('span', { class: `dot s-${l.state}` }), l.state),
        el('td', {}, String(l.syncedRevision)),
        el('td', {}, l.ageMs > 0 ? formatDuration(l.ageMs) : '–'),
      ),
    );
    byId<HTMLTableElement>('laggards').tBodies[0]!.replaceChildren(
      ...(rows.length > 0
        ? rows
        : [el('tr', {}, el('td', { colspan: '4', class: 'muted' }, 'every node is in sync'))]),
    );
    for (const td of byId('revisions').querySelectorAll<HTMLElement>('[data-age-from]')) {
      td.textContent = formatDuration(now - Number(td.dataset['ageFrom']));
    }
  }
}
