import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../../common/index.js';

export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The page's files by URL path. */
export type Assets = ReadonlyMap<string, Asset>;

const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));

const asset = (body: Buffer | string, contentType: string): Asset => {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  return {
    body: buf,
    contentType,
    etag: `"${createHash('sha256').update(buf).digest('base64url').slice(0, 16)}"`,
  };
};

/**
 * The dashboard page from the repository's own sources (no CDN, no files
 * written): index.html and styles.css as they are, ui/main.ts bundled into
 * one ES module in memory with esbuild (a declared dependency; tsx uses it
 * too). Done once when the server starts; a broken page fails the start instead of the first visit.
 */
export async function bundleAssets(opts: { signal?: AbortSignal } = {}): Promise<Assets> {
  const esbuild = await import('esbuild');
  opts.signal?.throwIfAborted();
  let js: Buffer;
  try {
    const out = await esbuild.build({
      entryPoints: [`${UI_DIR}main.ts`],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
      logLevel: 'silent',
      legalComments: 'none',
    });
    const file = out.outputFiles[0];
    if (!file) throw new Error('esbuild produced no output');
    js = Buffer.from(file.contents);
  } catch (err) {
    throw new MeshError('INTERNAL', `cannot bundle the dashboard page (${UI_DIR}main.ts)`, {
      cause: err,
    });
  }
  opts.signal?.throwIfAborted();
  const [html, css] = await Promise.all([
    readFile(`${UI_DIR}index.html`),
    readFile(`${UI_DIR}styles.css`),
  ]);
  return new Map([
    ['/', asset(html, 'text/html; charset=utf-8')],
    ['/app.js', asset(js, 'text/javascript; charset=utf-8')],
    ['/app.css', asset(css, 'text/css; charset=utf-8')],
  ]);
}
