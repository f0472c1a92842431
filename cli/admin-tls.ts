import { access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  clientTransport,
  meshTlsLayout,
  readTlsMaterial,
  type ClientTransport,
  type TlsFiles,
} from '../common/tls/index.js';
import { CliExit, EXIT } from './exit-codes.js';
import { readMeshState } from './state-dir.js';

/** `<state-dir>/tls`: the mesh CA and certificates `meshctl up` issued. */
export function tlsDirOf(stateDir: string): string {
  return join(stateDir, 'tls');
}

/**
 * What meshctl presents to the admin API: the admin certificate of the state
 * dir the command resolved (`--state-dir`, else MESHPLANE_STATE_DIR, else .meshplane) — named in
 * mesh.json by a running `meshctl up`, or found in its tls dir while `up` is
 * still starting. Plain text only when mesh.json says the mesh runs
 * --insecure, or there is no mesh state at all (a control plane started by
 * hand with --insecure, reached with --server).
 */
export async function adminTransport(
  stateDir: string,
  opts: { signal?: AbortSignal } = {},
): Promise<ClientTransport & { plainTextBecause?: string }> {
  const state = await readMeshState(stateDir);
  if (state?.tls === 'insecure') {
    return { ...clientTransport('insecure'), plainTextBecause: 'the mesh runs --insecure' };
  }
  const files: TlsFiles = state?.tls ?? meshTlsLayout(tlsDirOf(stateDir)).admin;
  if (state?.tls === undefined && !(await exists(files.cert))) {
    // Said when the server is unreachable: a TLS server looks exactly like that to plain text.
    return {
      ...clientTransport('insecure'),
      plainTextBecause: `no admin certificate in ${tlsDirOf(stateDir)}; for an mTLS mesh pass its --state-dir`,
    };
  }
  try {
    return clientTransport(await readTlsMaterial(files, opts));
  } catch (err) {
    throw new CliExit(
      EXIT.usage,
      `cannot use the admin certificate of ${stateDir}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
