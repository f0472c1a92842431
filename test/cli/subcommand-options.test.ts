// meshctl's options belong to the command they follow. `clusters join` and
// `clusters remove` share --server/--state-dir with their parent `clusters`;
// without positional options the parent swallowed them and the subcommand fell
// back to the default state dir. Nothing listens on the address we pass, so the
// error must name that address (and not "no running mesh found" under ./.meshplane).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, type TempDir } from '../harness/index.js';

const run = promisify(execFile);
const MESHCTL = join(new URL('../..', import.meta.url).pathname, 'bin/meshctl.mjs');

async function meshctl(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await run(process.execPath, [MESHCTL, ...args], { timeout: 60_000 });
    return { code: 0, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}

describe('meshctl subcommand options', () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await tempDir('cli-');
  });
  afterAll(async () => {
    await dir.cleanup();
  });

  it.each([
    ['join', ['clusters', 'join', '--name', 'ap', '--id', '3']],
    ['remove', ['clusters', 'remove', '--name', 'ap']],
  ])('clusters %s uses the --server and --state-dir given after it', async (_, args) => {
    const r = await meshctl([...args, '--server', '127.0.0.1:1', '--state-dir', dir.path]);
    expect(r.code).toBe(3); // EXIT.unreachable
    expect(r.stderr).toContain('control plane at 127.0.0.1:1 is unreachable');
    expect(r.stderr).toContain(dir.path);
    expect(r.stderr).not.toContain('no running mesh found');
  });

  it('clusters with --state-dir before a subcommand still reads it as the parent option', async () => {
    const r = await meshctl(['clusters', '--state-dir', dir.path]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`no running mesh found: ${join(dir.path, 'mesh.json')}`);
  });
});
