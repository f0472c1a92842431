// The dashboard page: follows the control plane's event stream and draws it.
// Each update is timed with a performance measure named 'dashboard-render'
// (apply + DOM update + style/layout), which the benchmark reads.
import { applyDelta, nodeKey, type WireDelta, type WireState } from '../wire.js';
import { showNode } from './drilldown.js';
import { DashboardView } from './view.js';

let state: WireState | undefined;
/** server clock − page clock, from the latest message */
let skewMs = 0;
let selected: { cluster: string; node: string } | undefined;
let source: EventSource | undefined;

const serverNow = (): number => Date.now() + skewMs;
const drilldown = document.getElementById('drilldown')!;

const view = new DashboardView((cluster, node) => {
  selected = { cluster, node };
  view.select(nodeKey(cluster, node));
  void showNode(drilldown, cluster, node, serverNow());
});

function timed(fn: () => void): void {
  performance.mark('dashboard-update');
  fn();
  // Force style and layout so the measure covers them, not only script.
  void document.body.offsetHeight;
  performance.measure('dashboard-render', 'dashboard-update');
  if (performance.getEntriesByName('dashboard-render').length > 5000) {
    performance.clearMeasures('dashboard-render');
  }
}

function connect(): void {
  source?.close();
  source = new EventSource('/api/events');
  source.onopen = () => view.setConnection(true);
  source.onerror = () => view.setConnection(false);
  source.addEventListener('state', (ev) => {
    timed(() => {
      state = JSON.parse((ev as MessageEvent<string>).data) as WireState;
      skewMs = state.now - Date.now();
      view.renderAll(state, serverNow());
    });
    document.body.dataset['seq'] = String(state?.seq ?? 0);
  });
  source.addEventListener('delta', (ev) => {
    if (!state) return;
    const delta = JSON.parse((ev as MessageEvent<string>).data) as WireDelta;
    const next = applyDelta(state, delta);
    if (!next) {
      // A gap: start over from a fresh state.
      connect();
      return;
    }
    timed(() => {
      state = next;
      skewMs = next.now - Date.now();
      const now = serverNow();
      if (delta.nodes.length > 0 || delta.removed.length > 0) {
        view.updateNodes(next, delta.removed.length > 0 ? next.nodes : delta.nodes);
      }
      if (delta.revisions.length > 0 || delta.droppedRevisions.length > 0) {
        view.renderRevisions(next, now);
      }
      if (delta.errors.length > 0) view.renderErrors(next);
      view.renderAges(next, now);
    });
    document.body.dataset['seq'] = String(next.seq);
    if (selected && delta.nodes.some((n) => n[0] === selected?.cluster && n[1] === selected.node)) {
      void showNode(drilldown, selected.cluster, selected.node, serverNow());
    }
  });
}

setInterval(() => {
  if (state) view.renderAges(state, serverNow());
}, 1000);
connect();
