import { afterEach, describe, expect, it } from 'vitest';
import {
  Dashboard,
  applyDelta,
  type WireDelta,
  type WireState,
} from '../../controlplane/dashboard/index.js';
import { silentLogger, systemClock } from '../../common/index.js';
import { waitFor } from '../harness/index.js';
import { FakeTracker } from './fake-tracker.js';

/** Reads server-sent events from a fetch body: `{ event, data }` as they arrive. */
async function* sse(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

describe('dashboard server', () => {
  let dashboard: Dashboard | undefined;
  afterEach(async () => {
    await dashboard?.stop();
    dashboard = undefined;
  });

  const start = async (tracker: FakeTracker, routes = {}): Promise<string> => {
    dashboard = new Dashboard({
      tracker,
      clock: systemClock,
      log: silentLogger(),
      listen: '127.0.0.1:0',
      maxUpdatesPerSecond: 20,
      routes,
    });
    return (await dashboard.start()).url;
  };

  it('serves the page from its own origin only (no CDN), with the bundle it references', async () => {
    const url = await start(new FakeTracker(Date.now));
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    expect(html).toContain('src="/app.js"');
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${url}app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    const code = await js.text();
    expect(code).toContain('EventSource');
    expect(code).not.toMatch(/\bimport\s*["'{]/); // one bundle, nothing left to fetch
    expect((await fetch(`${url}app.css`)).status).toBe(200);
    expect((await fetch(`${url}nope`)).status).toBe(404);
    expect((await fetch(url, { method: 'POST' })).status).toBe(405);
  });

  it('streams the state, then deltas a client can apply to reach the current state', async () => {
    const tracker = new FakeTracker(Date.now);
    tracker.setNode('eu', { name: 'eu-1', state: 'in-sync', ackedRevision: 1, syncedRevision: 1 });
    tracker.setNode('eu', { name: 'eu-2', state: 'in-sync', ackedRevision: 1, syncedRevision: 1 });
    tracker.latestRevision = 1;
    const url = await start(tracker);
    const abort = new AbortController();
    const res = await fetch(`${url}api/events`, { signal: abort.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const events = sse(res.body!);
    const next = async (): Promise<{ event: string; data: string }> => {
      const r = await events.next();
      if (r.done) throw new Error('the event stream ended');
      return r.value;
    };
    const first = await next();
    expect(first.event).toBe('state');
    let state = JSON.parse(first.data) as WireState;
    expect(state.nodes.map((n) => n[1])).toEqual(['eu-1', 'eu-2']);

    tracker.latestRevision = 2;
    tracker.setNode('eu', {
      name: 'eu-2',
      state: 'nacked',
      since: Date.now(),
      pendingSince: Date.now(),
      error: 'revision 2 rejected: endpoint capacity 1',
    });
    tracker.setNode('eu', { name: 'eu-1', ackedRevision: 2, syncedRevision: 2 });
    tracker.emit({ type: 'nack' });
    for (;;) {
      const frame = await next();
      expect(frame.event).toBe('delta');
      state = applyDelta(state, JSON.parse(frame.data) as WireDelta)!;
      if (state.revision === 2 && state.errors.length > 0) break;
    }
    abort.abort();
    expect(state.nodes.find((n) => n[1] === 'eu-2')?.[2]).toBe(2);
    expect(state.errors[0]).toMatchObject([
      expect.any(Number),
      'eu',
      'eu-2',
      'nacked',
      'revision 2 rejected: endpoint capacity 1',
    ]);
    const current = (await (await fetch(`${url}api/state`)).json()) as WireState;
    expect(current).toEqual(state);
  });

  it('answers a node drill-down and names an unknown node', async () => {
    const tracker = new FakeTracker(Date.now);
    tracker.setNode('eu', { name: 'eu-1', ackedRevision: 3, syncedRevision: 3 });
    tracker.histories.set('eu/eu-1', [{ revision: 3, ackedAt: 1, propagationMs: 9, applyMs: 1 }]);
    const url = await start(tracker);
    const ok = await fetch(`${url}api/node?cluster=eu&node=eu-1`);
    expect(await ok.json()).toMatchObject({
      node: ['eu', 'eu-1', 0, 3, 3, 0, 0, ''],
      history: [{ revision: 3, outcome: 'ack', latencyMs: 9, applyMs: 1 }],
    });
    const missing = await fetch(`${url}api/node?cluster=eu&node=eu-9`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no node eu/eu-9 in the mesh' });
  });

  it('serves extra routes on the same port (e.g. /metrics)', async () => {
    const url = await start(new FakeTracker(Date.now), {
      '/metrics': (_req: unknown, res: import('node:http').ServerResponse) =>
        res.end('meshplane_up 1\n'),
    });
    expect(await (await fetch(`${url}metrics`)).text()).toBe('meshplane_up 1\n');
  });

  it('stops with a client still connected', async () => {
    const url = await start(new FakeTracker(Date.now));
    const res = await fetch(`${url}api/events`);
    const reader = res.body!.getReader();
    await reader.read();
    await dashboard!.stop();
    dashboard = undefined;
    await waitFor('the stream to end', async () => (await reader.read()).done);
    await expect(fetch(url)).rejects.toThrow();
  });
});
