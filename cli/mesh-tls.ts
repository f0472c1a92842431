import { rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { MeshError } from '../common/index.js';
import { adminUserName, writeMeshTls, type TlsFiles } from '../common/tls/index.js';

/** The certificates `meshctl up` hands out, by process. */
export interface UpTls {
  controlPlane: TlsFiles;
  admin: TlsFiles;
  agent(cluster: string, node: string): TlsFiles;
}

/**
 * Issues the mesh's certificates into `dir` (see common/tls: CA, control
 * plane, admin, one per agent), or with --insecure removes any left by an
 * earlier --keep run so meshctl does not present them to a plain-text server.
 */
export async function writeUpTls(
  dir: string,
  agents: readonly { cluster: string; node: string }[],
  opts: { insecure: boolean; signal?: AbortSignal },
): Promise<UpTls | 'insecure'> {
  if (opts.insecure) {
    await removeMeshTls(dir);
    return 'insecure';
  }
  const tls = await writeMeshTls(
    dir,
    { agents, adminUser: adminUserName(loginName()) },
    opts.signal ? { signal: opts.signal } : {},
  );
  return {
    controlPlane: tls.controlPlane,
    admin: tls.admin,
    agent: (cluster, node) => {
      const files = tls.agents.get(`${cluster}/${node}`);
      if (!files) throw new MeshError('INTERNAL', `no certificate issued for ${cluster}/${node}`);
      return files;
    },
  };
}

/** Command-line flags for a component: paths only, never key material. */
export function meshTlsArgs(files: TlsFiles | 'insecure'): string[] {
  if (files === 'insecure') return ['--insecure'];
  return ['--tls-ca', files.ca, '--tls-cert', files.cert, '--tls-key', files.key];
}

export async function removeMeshTls(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

// userInfo() throws for a uid without a passwd entry (some containers).
function loginName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'admin';
  }
}
