import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsCredentials } from '../clusters/src/index.js';
import type { NatsAuthorization } from '../launcher/index.js';
import { meshNatsUsers } from './nats-permissions.js';

/** 32 random bytes: far beyond guessing, and base64url fits the launcher's password charset. */
export function randomNatsPassword(): string {
  return randomBytes(32).toString('base64url');
}

export interface MeshNatsCredentials {
  /** for `startInfra({ natsAuthorization })` */
  authorization: NatsAuthorization;
  /** the control plane's `--nats-creds` file */
  controlPlaneFile: string;
  /** each cluster source's `--nats-creds` file, by cluster name */
  sourceFiles: Map<string, string>;
}

/**
 * Generates the mesh's NATS users (see nats-permissions.ts) and writes each
 * one's credentials to `<dir>/<user>.json`, mode 0600 in a 0700 dir, so each
 * process gets only its own password and never on a command line. Passwords
 * are never logged.
 */
export async function writeMeshNatsCredentials(
  dir: string,
  clusters: readonly string[],
  opts: { newPassword?: () => string; signal?: AbortSignal } = {},
): Promise<MeshNatsCredentials> {
  const users = meshNatsUsers(clusters, opts.newPassword ?? randomNatsPassword);
  // A dir left by a --keep run may hold users of clusters no longer in the mesh.
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const write = async (creds: NatsCredentials): Promise<string> => {
    const file = join(dir, `${creds.user}.json`);
    await writeFile(file, `${JSON.stringify(creds)}\n`, {
      mode: 0o600,
      flag: 'wx',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return file;
  };
  const controlPlaneFile = await write(users.controlPlane);
  const sourceFiles = new Map<string, string>();
  for (const [cluster, creds] of users.sources) sourceFiles.set(cluster, await write(creds));
  return { authorization: users.authorization, controlPlaneFile, sourceFiles };
}

export async function removeMeshNatsCredentials(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
