/**
 * Helpers for vitest suites that need real servers or the kernel. Each helper
 * owns what it creates and cleans it up in the suite's own hooks.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll } from 'vitest';
import {
  startInfra,
  type EtcdServer,
  type Infra,
  type LaunchOptions,
  type NatsServer,
} from '../../launcher/index.js';

/** Starting both servers takes well under a second; leave room for a loaded 2-core CI box. */
const START_TIMEOUT_MS = 45_000;
const HOOK_TIMEOUT_MS = 60_000;

export interface InfraHandle {
  readonly etcd: EtcdServer;
  readonly nats: NatsServer;
  readonly infra: Infra;
}

/**
 * Real etcd and NATS for the calling file (or describe block): started in
 * `beforeAll`, stopped in `afterAll`. Read the getters inside tests and hooks;
 * reading them outside that window throws.
 */
export function useInfra(options: Omit<LaunchOptions, 'signal'> = {}): InfraHandle {
  let running: Infra | undefined;
  beforeAll(async () => {
    running = await startInfra({ startTimeoutMs: START_TIMEOUT_MS, ...options });
  }, HOOK_TIMEOUT_MS);
  afterAll(async () => {
    const infra = running;
    running = undefined;
    await infra?.stop();
  }, HOOK_TIMEOUT_MS);

  const current = (): Infra => {
    if (running === undefined) {
      throw new Error(
        'useInfra(): etcd and NATS are not running here. Use the handle inside tests or ' +
          'beforeEach/afterEach hooks (they start in beforeAll and stop in afterAll), ' +
          'not at describe time.',
      );
    }
    return running;
  };
  return {
    get etcd() {
      return current().etcd;
    },
    get nats() {
      return current().nats;
    },
    get infra() {
      return current();
    },
  };
}

export interface TempDir {
  readonly path: string;
  /** Removes the directory and everything in it. Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * A fresh directory under the OS temp dir, named `meshplane-<prefix>XXXXXX` so
 * CI's leftover check sees it if a test forgets `cleanup()`.
 */
export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `meshplane-${prefix}`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 3 }) };
}

// Capability bit numbers from linux/capability.h.
const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/**
 * Whether kernel-datapath tests can run: root with CAP_NET_ADMIN and CAP_BPF
 * (CAP_SYS_ADMIN grants BPF on kernels before 5.8). Use as
 * `describe.skipIf(!requirePrivileged())`. CI sets MESHPLANE_REQUIRE_PRIVILEGED=1
 * so that a runner that lost its privileges fails instead of silently skipping.
 */
export function requirePrivileged(): boolean {
  const privileged = process.getuid?.() === 0 && hasDatapathCapabilities();
  if (!privileged && process.env['MESHPLANE_REQUIRE_PRIVILEGED'] === '1') {
    throw new Error(
      'privileged tests are required in CI (MESHPLANE_REQUIRE_PRIVILEGED=1), but this ' +
        'process is not root with CAP_BPF and CAP_NET_ADMIN',
    );
  }
  return privileged;
}

function hasDatapathCapabilities(): boolean {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return true; // no procfs to ask: trust uid 0
  }
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) return true;
  const effective = BigInt(`0x${hex}`);
  const has = (bit: bigint): boolean => ((effective >> bit) & 1n) === 1n;
  return has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN));
}

/**
 * Polls `probe` until it returns something other than undefined (or false),
 * and returns that; fails naming `what` after `timeoutMs`. Tests wait with
 * generous timeouts; speed belongs in benchmarks.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number; detail?: () => string } = {},
): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}${opts.detail ? `: ${opts.detail()}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/**
 * Runs a full garbage collection every 20 ms while `work` is pending (what a
 * busy process does on its own, at times nobody chooses).
 */
export async function underGc<T>(work: Promise<T>): Promise<T> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const timer = setInterval(gc, 20);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
