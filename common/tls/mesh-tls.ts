import { mkdir, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../errors.js';
import { CONTROL_PLANE_SERVER_NAME } from './credentials.js';
import { issueCa, issueCertificate, type CertificateFiles } from './issue.js';
import { adminSpiffeId, isCertificateName, nodeSpiffeId } from './spiffe.js';

/** What a process needs for mTLS: the mesh CA and its own certificate and key (paths). */
export interface TlsFiles extends CertificateFiles {
  ca: string;
}

/**
 * Where each certificate of a mesh lives under a tls dir:
 *   ca.crt ca.key  controlplane.crt/.key  admin.crt/.key  agents/<cluster>/<node>.crt/.key
 */
export function meshTlsLayout(dir: string): {
  ca: CertificateFiles;
  controlPlane: TlsFiles;
  admin: TlsFiles;
  agent(cluster: string, node: string): TlsFiles;
} {
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  const pair = (base: string): TlsFiles => ({
    ca: ca.cert,
    cert: `${base}.crt`,
    key: `${base}.key`,
  });
  return {
    ca,
    controlPlane: pair(join(dir, 'controlplane')),
    admin: pair(join(dir, 'admin')),
    agent: (cluster, node) => pair(join(dir, 'agents', cluster, node)),
  };
}

export interface MeshTlsPlan {
  /** every node agent: one client certificate each */
  agents: readonly { cluster: string; node: string }[];
  /** the operator meshctl acts for (spiffe://meshplane/admin/<user>) */
  adminUser: string;
  /**
   * Names clients may dial the control plane by, besides 127.0.0.1, ::1,
   * localhost and this host's name (e.g. the host of `--listen`).
   */
  serverNames?: readonly string[];
  /** validity of every certificate (default 90 days; the CA 365) */
  days?: number;
}

export interface MeshTls {
  dir: string;
  ca: CertificateFiles;
  controlPlane: TlsFiles;
  admin: TlsFiles;
  /** by `<cluster>/<node>` */
  agents: Map<string, TlsFiles>;
}

/**
 * Creates a fresh mesh CA in `dir` (mode 0700; any earlier content is
 * removed: a new mesh never trusts an old one's certificates) and issues the
 * control plane's server certificate, the admin certificate and one client
 * certificate per agent. Keys are 0600 and never leave the dir.
 */
export async function writeMeshTls(
  dir: string,
  plan: MeshTlsPlan,
  opts: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<MeshTls> {
  const days = plan.days ?? 90;
  const layout = meshTlsLayout(dir);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await issueCa(layout.ca, { commonName: 'meshplane mesh CA', days: 365, ...opts });

  const jobs: (() => Promise<void>)[] = [];
  jobs.push(() =>
    issueCertificate(
      layout.ca,
      layout.controlPlane,
      {
        commonName: 'meshplane control plane',
        subjectAltNames: serverAltNames(plan.serverNames ?? []),
        usage: 'server',
        days,
      },
      opts,
    ),
  );
  jobs.push(() =>
    issueCertificate(
      layout.ca,
      layout.admin,
      {
        commonName: `meshplane admin ${plan.adminUser}`,
        subjectAltNames: [`URI:${adminSpiffeId(plan.adminUser)}`],
        usage: 'client',
        days,
      },
      opts,
    ),
  );
  const agents = new Map<string, TlsFiles>();
  for (const { cluster, node } of plan.agents) {
    const uri = nodeSpiffeId(cluster, node);
    const files = layout.agent(cluster, node);
    agents.set(`${cluster}/${node}`, files);
    jobs.push(async () => {
      await mkdir(join(dir, 'agents', cluster), { recursive: true, mode: 0o700 });
      await issueCertificate(
        layout.ca,
        files,
        {
          commonName: `${cluster}/${node}`,
          subjectAltNames: [`URI:${uri}`],
          usage: 'client',
          days,
        },
        opts,
      );
    });
  }
  // A few openssl processes at a time: ~10 ms each, and 1,000 agents must not fork 1,000 at once.
  const queue = jobs.values();
  const worker = async (): Promise<void> => {
    for (let job = queue.next(); !job.done; job = queue.next()) await job.value();
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  return { dir, ca: layout.ca, controlPlane: layout.controlPlane, admin: layout.admin, agents };
}

/**
 * The control plane's SANs: the name mesh clients check, and for other tools
 * (grpcurl, openssl s_client) loopback, this host, and what the caller dials.
 */
function serverAltNames(extra: readonly string[]): string[] {
  const names = new Set([
    `DNS:${CONTROL_PLANE_SERVER_NAME}`,
    'IP:127.0.0.1',
    'IP:::1',
    'DNS:localhost',
  ]);
  const host = hostname();
  if (isCertificateName(host)) names.add(`DNS:${host}`);
  for (const name of extra) {
    // A wildcard listen address is not a name anyone dials.
    if (name === '' || name === '0.0.0.0' || name === '::' || name === '[::]') continue;
    const bare = name.replace(/^\[(.*)\]$/, '$1');
    if (isIP(bare)) names.add(`IP:${bare}`);
    else if (isCertificateName(bare)) names.add(`DNS:${bare}`);
    else throw new MeshError('VALIDATION', `"${name}" is not a host name or IP address`);
  }
  return [...names];
}
