import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { MeshError } from '../common/index.js';
import type { ServerBinary } from './types.js';

/** The Debian package that ships each binary (scripts/bootstrap.sh installs them). */
const DEBIAN_PACKAGE: Record<ServerBinary, string> = {
  etcd: 'etcd-server',
  'nats-server': 'nats-server',
};

// Debian puts nats-server in /usr/sbin, which is not on a non-root user's PATH.
const FALLBACK_DIRS = ['/usr/bin', '/usr/sbin'];

/** Absolute path of an executable `name` from PATH, /usr/bin or /usr/sbin. */
export function findBinary(name: ServerBinary): string {
  const pathDirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => isAbsolute(d));
  for (const dir of [...pathDirs, ...FALLBACK_DIRS]) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  const pkg = DEBIAN_PACKAGE[name];
  throw new MeshError(
    'LAUNCH_FAILED',
    `${name} not found in PATH, /usr/bin or /usr/sbin: install the Debian package ${pkg} ` +
      `(apt-get install ${pkg}, or npm run setup as root)`,
  );
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
