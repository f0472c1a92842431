import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { MeshError } from '../../../common/index.js';
import { LAYOUT_VERSION, decodeConfig, encodeConfig } from './layout.js';
import { BpfError, type Libbpf } from './libbpf.js';
import { loadObject, type LoadedObject, type ObjectSizes } from './object.js';

const run = promisify(execFile);
const BPF_FS_MAGIC = 0xcafe4a11;
const EINVAL = 22;

/** The root of every meshplane pin (DESIGN: /sys/fs/bpf/meshplane/<run-id>/<node>). */
export const BPFFS_ROOT = '/sys/fs/bpf';

export function defaultPinDir(runId: string, node: string): string {
  return join(BPFFS_ROOT, 'meshplane', runId, node);
}

/** The pins of the current layout inside a node's pin dir. */
export function layoutDir(pinDir: string): string {
  return join(pinDir, `v${LAYOUT_VERSION}`);
}

/** Events per second per CPU and burst, written into config at creation. */
export const DEFAULT_EVENT_RATE = { perSec: 1000, burst: 2000 } as const;

/**
 * Makes sure /sys/fs/bpf is a bpf filesystem: mounts it if it is not (as
 * Cilium's agent does). The mount is shared host state and is left in place.
 */
export async function ensureBpffs(opts: { signal?: AbortSignal } = {}): Promise<void> {
  const st = await statfs(BPFFS_ROOT).catch(() => undefined);
  if (st !== undefined && st.type === BPF_FS_MAGIC) return;
  try {
    await run('mount', ['-t', 'bpf', 'bpf', BPFFS_ROOT], { signal: opts.signal });
  } catch (err) {
    throw new MeshError(
      'INTERNAL',
      `${BPFFS_ROOT} is not a bpf filesystem and mounting one failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

export interface OpenedPins {
  object: LoadedObject;
  /** true when the pins were created now (none existed, or another layout was replaced) */
  created: boolean;
  /** names of pin directories of another layout (or size) that were replaced */
  replaced: string[];
}

/**
 * Loads the object on the pins in `pinDir`: adopts pins of this layout and
 * size; otherwise builds a complete new set in a staging directory, then
 * renames it into place and removes the old set, so the pin dir never holds
 * a half-built set. Programs already attached keep the maps they were loaded
 * with until they are attached again.
 */
export async function openPins(
  lib: Libbpf,
  opts: { pinDir: string; objectPath: string; sizes: ObjectSizes; signal?: AbortSignal },
): Promise<OpenedPins> {
  await ensureBpffs(opts);
  if (!opts.pinDir.startsWith(`${BPFFS_ROOT}/`)) {
    throw new MeshError('VALIDATION', `pin dir ${opts.pinDir} is not under ${BPFFS_ROOT}`);
  }
  await mkdir(opts.pinDir, { recursive: true });
  const current = layoutDir(opts.pinDir);
  const replaced: string[] = [];
  if (existsSync(current)) {
    try {
      const object = loadObject(lib, { ...opts, pinDir: current });
      const config = readConfig(lib, object);
      if (config.layoutVersion === LAYOUT_VERSION) {
        await removeOthers(opts.pinDir, current, replaced);
        return { object, created: false, replaced };
      }
      object.close();
    } catch (err) {
      // EINVAL: a pinned map of another type or size — replace the set.
      if (!(err instanceof BpfError && err.errno === EINVAL)) throw err;
    }
  }
  opts.signal?.throwIfAborted();
  const staging = join(opts.pinDir, `staging-${process.pid}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  let object: LoadedObject;
  try {
    object = loadObject(lib, { ...opts, pinDir: staging });
    const zero = Buffer.alloc(4);
    lib.update(
      object.mapFd('config'),
      zero,
      encodeConfig({
        active: 0,
        layoutVersion: LAYOUT_VERSION,
        eventsPerSec: DEFAULT_EVENT_RATE.perSec,
        eventsBurst: DEFAULT_EVENT_RATE.burst,
      }),
      0n,
    );
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  if (existsSync(current)) {
    const old = join(opts.pinDir, `old-${process.pid}`);
    await rename(current, old);
    replaced.push(current);
  }
  await rename(staging, current);
  await removeOthers(opts.pinDir, current, replaced);
  return { object, created: true, replaced };
}

function readConfig(lib: Libbpf, object: LoadedObject): ReturnType<typeof decodeConfig> {
  const v = Buffer.alloc(16);
  lib.lookup(object.mapFd('config'), Buffer.alloc(4), v);
  return decodeConfig(v);
}

/** Removes pin sets of other layouts and leftovers of interrupted replacements. */
async function removeOthers(pinDir: string, keep: string, replaced: string[]): Promise<void> {
  for (const name of await readdir(pinDir)) {
    const path = join(pinDir, name);
    if (path === keep || !/^(v\d+|old-\d+|staging-\d+)$/.test(name)) continue;
    if (name.startsWith('staging-') && name === `staging-${process.pid}`) continue;
    if (!replaced.includes(path) && name.startsWith('v')) replaced.push(path);
    await rm(path, { recursive: true, force: true });
  }
}

/**
 * Removes a pin directory and every pin under it (a run's cleanup; an agent
 * never calls this on stop). Empty parents up to the run dir are removed too.
 */
export async function removePins(pinDir: string): Promise<void> {
  if (!pinDir.startsWith(`${BPFFS_ROOT}/meshplane/`)) {
    throw new MeshError(
      'VALIDATION',
      `refusing to remove ${pinDir}: not under ${BPFFS_ROOT}/meshplane`,
    );
  }
  await rm(pinDir, { recursive: true, force: true });
  let dir = dirname(pinDir);
  while (dir.startsWith(`${BPFFS_ROOT}/meshplane/`)) {
    const left = await readdir(dir).catch(() => undefined);
    if (left === undefined || left.length > 0) break;
    await rm(dir, { recursive: true, force: true });
    dir = dirname(dir);
  }
}
