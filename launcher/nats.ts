import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary } from './find-binary.js';
import { launchServer } from './launch.js';
import { natsConfig } from './nats-config.js';
import type { LaunchOptions, NatsServer } from './types.js';

interface NatsPorts {
  url: string;
  monitorUrl: string;
}

/**
 * Starts nats-server with JetStream on OS-chosen loopback ports (`-1`) in a
 * fresh data dir. The server reports the ports it got in a ports file
 * (`--ports_file_dir`, as `ports_file_dir` in the config), which is more robust
 * than scraping its log. With `natsAuthorization` every client must log in;
 * readiness still works because it only reads the ports file and the
 * (unauthenticated, loopback-only) monitoring port.
 */
export async function startNats(options: LaunchOptions = {}): Promise<NatsServer> {
  const server = await launchServer(
    {
      name: 'nats-server',
      binary: options.binaries?.['nats-server'] ?? findBinary('nats-server'),
      dirPrefix: 'meshplane-nats-',
      prepare: async (dataDir) => {
        const configFile = join(dataDir, 'nats-server.conf');
        // 0600: with authorization the config holds the users' passwords.
        await writeFile(configFile, natsConfig(dataDir, options.natsAuthorization), {
          mode: 0o600,
        });
        return ['-c', configFile];
      },
      probe:
        ({ dataDir, pid }) =>
        async (signal) => {
          const ports = await readPortsFile(dataDir, pid);
          if (ports === undefined) return undefined;
          // /healthz also waits for JetStream to be ready.
          const res = await fetch(`${ports.monitorUrl}/healthz`, { signal });
          await res.text();
          return res.ok ? ports : undefined;
        },
    },
    options,
  );
  return { ...server.ready, dataDir: server.dataDir, pid: server.pid, stop: server.stop };
}

/** The ports file is `<executable>_<pid>.ports`; absent until all listeners are up. */
async function readPortsFile(dataDir: string, pid: number): Promise<NatsPorts | undefined> {
  const file = (await readdir(dataDir)).find((f) => f.endsWith(`_${pid}.ports`));
  if (file === undefined) return undefined;
  let parsed: { nats?: unknown; monitoring?: unknown };
  try {
    parsed = JSON.parse(await readFile(join(dataDir, file), 'utf8')) as typeof parsed;
  } catch {
    return undefined; // caught mid-write; the next poll reads it whole
  }
  const url = firstString(parsed.nats);
  const monitorUrl = firstString(parsed.monitoring);
  return url !== undefined && monitorUrl !== undefined ? { url, monitorUrl } : undefined;
}

function firstString(value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined;
}
