import { MeshError } from '../errors.js';

/**
 * Who a mesh certificate speaks for, from its SAN URI:
 *   spiffe://meshplane/cluster/<cluster>/node/<node>   a node agent
 *   spiffe://meshplane/admin/<user>                    an operator (meshctl)
 * Pure: no files, no network.
 */
export type MeshPeer =
  | { kind: 'node'; cluster: string; node: string; uri: string }
  | { kind: 'admin'; user: string; uri: string };

export const SPIFFE_TRUST_DOMAIN = 'meshplane';

// Cluster names are DNS labels; node names are Kubernetes node names (DNS
// subdomains). Anything else could smuggle a '/' into the URI path or a ','
// into an openssl config, so issuance refuses it.
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/i;
const USER = /^[a-z0-9_]([-a-z0-9_.]{0,62}[a-z0-9_])?$/i;

export function isCertificateName(name: string): boolean {
  return NAME.test(name);
}

export function nodeSpiffeId(cluster: string, node: string): string {
  for (const [what, v] of [
    ['cluster', cluster],
    ['node', node],
  ] as const) {
    if (!NAME.test(v)) {
      throw new MeshError(
        'VALIDATION',
        `${what} name "${v}" cannot be part of a certificate identity`,
      );
    }
  }
  return `spiffe://${SPIFFE_TRUST_DOMAIN}/cluster/${cluster}/node/${node}`;
}

export function adminSpiffeId(user: string): string {
  if (!USER.test(user)) {
    throw new MeshError(
      'VALIDATION',
      `admin user "${user}" cannot be part of a certificate identity`,
    );
  }
  return `spiffe://${SPIFFE_TRUST_DOMAIN}/admin/${user}`;
}

/** A user name usable in an admin identity (the OS login, made safe). */
export function adminUserName(login: string): string {
  const cleaned = login.replace(/[^a-z0-9_.-]/gi, '_').replace(/^[-.]+|[-.]+$/g, '');
  return cleaned === '' ? 'admin' : cleaned.slice(0, 64);
}

/** The mesh identity a SPIFFE URI names; undefined for any other URI. */
export function parseMeshSpiffeId(uri: string): MeshPeer | undefined {
  const prefix = `spiffe://${SPIFFE_TRUST_DOMAIN}/`;
  if (!uri.startsWith(prefix)) return undefined;
  const parts = uri.slice(prefix.length).split('/');
  if (parts.length === 4 && parts[0] === 'cluster' && parts[2] === 'node') {
    const [, cluster, , node] = parts as [string, string, string, string];
    if (NAME.test(cluster) && NAME.test(node)) return { kind: 'node', cluster, node, uri };
  }
  if (parts.length === 2 && parts[0] === 'admin' && USER.test(parts[1]!)) {
    return { kind: 'admin', user: parts[1]!, uri };
  }
  return undefined;
}

/**
 * The URIs in Node's `PeerCertificate.subjectaltname` text, e.g.
 * `URI:spiffe://meshplane/admin/ops, DNS:localhost`. Node quotes (JSON) an
 * entry that contains a separator, so a crafted name cannot split into two.
 */
export function sanUris(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const uris: string[] = [];
  const entry = /(\w[\w ]*):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  for (let m = entry.exec(subjectaltname); m !== null; m = entry.exec(subjectaltname)) {
    if (m[0] === '') break;
    const [, type, raw = ''] = m;
    if (type !== 'URI') continue;
    try {
      uris.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
    } catch {
      // An unparsable quoted entry names no one.
    }
  }
  return uris;
}
