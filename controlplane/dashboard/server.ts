import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshError, type Logger } from '../../common/index.js';
import { bundleAssets, type Assets } from './assets.js';
import type { DashboardFeed, FeedUpdate } from './feed.js';
import type { NodeHistoryEntry } from './source.js';
import { nodeKey, syncedRevisionOf } from './wire.js';

export interface DashboardServerOptions {
  /** HOST:PORT; port 0 = any. No authentication: keep it on loopback unless a proxy guards it */
  listen: string;
  feed: DashboardFeed;
  history: (cluster: string, node: string) => readonly NodeHistoryEntry[];
  log: Logger;
  /** more GET routes on the same port (e.g. '/metrics'), matched on the path */
  routes?: Readonly<Record<string, RequestListener>>;
  /** SSE comment this often so proxies keep the stream open (default 15 s) */
  heartbeatMs?: number;
  /** a client whose unsent backlog passes this is dropped; it reconnects from a fresh state (default 8 MiB) */
  maxBacklogBytes?: number;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'self'; img-src 'self' data:",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * The dashboard over HTTP: the page (`/`, `/app.js`, `/app.css`), the whole
 * state as JSON (`/api/state`), a node's drill-down (`/api/node?cluster=&node=`)
 * and the live stream (`/api/events`, server-sent events: one `state`, then
 * `delta`s at the feed's bounded rate).
 */
export class DashboardServer {
  readonly #opts: DashboardServerOptions;
  readonly #streams = new Set<ServerResponse>();
  #server: Server | undefined;
  #assets: Assets = new Map();
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #url = '';

  constructor(opts: DashboardServerOptions) {
    this.#opts = opts;
  }

  /** http://HOST:PORT/ once started */
  get url(): string {
    return this.#url;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<{ url: string }> {
    this.#assets = await bundleAssets(opts);
    const colon = this.#opts.listen.lastIndexOf(':');
    const host = this.#opts.listen.slice(0, colon);
    const port = Number(this.#opts.listen.slice(colon + 1));
    if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new MeshError(
        'VALIDATION',
        `dashboard listen address must be HOST:PORT, got ${this.#opts.listen}`,
      );
    }
    const server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new MeshError('UNAVAILABLE', `dashboard cannot listen on ${this.#opts.listen}`, {
            cause: err,
          }),
        ),
      );
      server.listen({ host, port, signal: opts.signal }, resolve);
    });
    this.#server = server;
    const bound = (server.address() as AddressInfo).port;
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}/`;
    this.#unsubscribe = this.#opts.feed.subscribe((u) => this.#broadcast(u));
    this.#heartbeat = setInterval(() => {
      for (const res of this.#streams) res.write(': keepalive\n\n');
    }, this.#opts.heartbeatMs ?? 15_000);
    this.#heartbeat.unref();
    return { url: this.#url };
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    clearInterval(this.#heartbeat);
    for (const res of this.#streams) res.end();
    this.#streams.clear();
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', ...SECURITY_HEADERS }).end();
      return;
    }
    const extra = this.#opts.routes?.[url.pathname];
    if (extra) {
      extra(req, res);
      return;
    }
    switch (url.pathname) {
      case '/api/events':
        this.#openStream(req, res);
        return;
      case '/api/state':
        this.#json(res, 200, this.#opts.feed.current());
        return;
      case '/api/node':
        this.#node(url, res);
        return;
      default:
        this.#asset(url.pathname === '/index.html' ? '/' : url.pathname, req, res);
    }
  }

  #asset(path: string, req: IncomingMessage, res: ServerResponse): void {
    const a = this.#assets.get(path);
    if (!a) {
      res.writeHead(404, { 'content-type': 'text/plain', ...SECURITY_HEADERS }).end('not found\n');
      return;
    }
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, { etag: a.etag }).end();
      return;
    }
    res.writeHead(200, {
      'content-type': a.contentType,
      'content-length': a.body.length,
      etag: a.etag,
      'cache-control': 'no-cache',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  #node(url: URL, res: ServerResponse): void {
    const cluster = url.searchParams.get('cluster') ?? '';
    const node = url.searchParams.get('node') ?? '';
    const row = this.#opts.feed
      .current()
      .nodes.find((n) => nodeKey(n[0], n[1]) === nodeKey(cluster, node));
    if (!row) {
      this.#json(res, 404, { error: `no node ${cluster}/${node} in the mesh` });
      return;
    }
    const state = this.#opts.feed.current();
    const resolved = [...row] as typeof row;
    resolved[4] = syncedRevisionOf(row, state.revision);
    this.#json(res, 200, { node: resolved, history: this.#opts.history(cluster, node) });
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      ...SECURITY_HEADERS,
    });
    res.end(text);
  }

  #openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      ...SECURITY_HEADERS,
    });
    res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(this.#opts.feed.current())}\n\n`);
    this.#streams.add(res);
    const drop = (): void => {
      this.#streams.delete(res);
    };
    req.once('close', drop);
    res.once('error', drop);
  }

  #broadcast(u: FeedUpdate): void {
    const frame = `event: delta\ndata: ${u.json}\n\n`;
    const limit = this.#opts.maxBacklogBytes ?? 8 * 1024 * 1024;
    for (const res of this.#streams) {
      if (res.writableLength > limit) {
        // Too slow to follow: it reconnects and starts from a fresh state.
        this.#opts.log.warn('dashboard client too slow; dropping its stream', {
          backlogBytes: res.writableLength,
        });
        this.#streams.delete(res);
        res.destroy();
        continue;
      }
      res.write(frame);
    }
  }
}
