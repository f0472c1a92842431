// meshctl as a user runs it, with OTEL_EXPORTER_OTLP_ENDPOINT: the command's
// span reaches the collector before the process exits (its composition root
// builds the exporter and flushes it), also when the command fails. The
// collector is a plain HTTP server recording what is posted to /v1/traces.
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../harness/index.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MESHCTL = join(ROOT, 'bin/meshctl.mjs');

describe('meshctl exports its spans over OTLP', () => {
  let server: Server;
  let url = '';
  let work: TempDir;
  const posts: { path: string; body: Buffer }[] = [];

  beforeAll(async () => {
    work = await tempDir('cli-otlp-');
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ path: req.url ?? '', body: Buffer.concat(chunks) });
        res.statusCode = 200;
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await work?.cleanup();
  });

  it('a failed meshctl wait still exports its span, named and marked as the exit code', async () => {
    const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          MESHCTL,
          'wait',
          '--revision',
          '7',
          '--timeout',
          '1s',
          // Nothing listens on port 1: the control plane is unreachable (exit 3).
          '--server',
          '127.0.0.1:1',
          '--state-dir',
          join(work.path, 'state'),
        ],
        { timeout: 60_000, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: url } },
        (err, _stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stderr }),
      );
    });
    expect(run.code, run.stderr).toBe(3);
    const traces = posts.filter((p) => p.path === '/v1/traces');
    expect(traces.length, JSON.stringify(posts.map((p) => p.path))).toBeGreaterThan(0);
    // Protobuf or JSON, the span's strings are in the body as UTF-8.
    const body = Buffer.concat(traces.map((p) => p.body)).toString('latin1');
    expect(body).toContain('meshctl wait');
    expect(body).toContain('meshctl.exit_code');
    expect(body).toContain('service.name');
  }, 90_000);
});
