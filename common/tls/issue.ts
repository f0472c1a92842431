import { chmod } from 'node:fs/promises';
import { runOpenssl } from './openssl.js';

/** Paths of one PEM certificate and its private key. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

export interface CertificateRequest {
  /** subject CN, for people reading `openssl x509 -text` */
  commonName: string;
  /** subjectAltName entries in openssl syntax, e.g. `URI:spiffe://…`, `IP:127.0.0.1` */
  subjectAltNames: readonly string[];
  usage: 'server' | 'client';
  days: number;
}

// ECDSA P-256 everywhere: small, fast handshakes, and what SPIFFE issuers default to.
const NEW_P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];

/** A self-signed mesh CA. The key is written 0600 by openssl; chmod makes sure. */
export async function issueCa(
  files: CertificateFiles,
  opts: { commonName: string; days: number; signal?: AbortSignal },
): Promise<void> {
  await runOpenssl(
    [
      'req',
      '-x509',
      '-new',
      ...NEW_P256_KEY,
      '-sha256',
      '-days',
      String(opts.days),
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    config(files, opts.commonName, [
      'basicConstraints = critical, CA:TRUE, pathlen:0',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
    ]),
    opts,
  );
  await chmod(files.key, 0o600);
}

/** A leaf certificate signed by the CA, with a fresh key (mode 0600). */
export async function issueCertificate(
  ca: CertificateFiles,
  files: CertificateFiles,
  req: CertificateRequest,
  opts: { signal?: AbortSignal } = {},
): Promise<void> {
  await runOpenssl(
    [
      'req',
      '-x509',
      '-new',
      ...NEW_P256_KEY,
      '-sha256',
      '-days',
      String(req.days),
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    config(files, req.commonName, [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      `extendedKeyUsage = ${req.usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
      `subjectAltName = ${req.subjectAltNames.join(', ')}`,
      'authorityKeyIdentifier = keyid',
      'subjectKeyIdentifier = hash',
    ]),
    opts,
  );
  await chmod(files.key, 0o600);
}

// A complete config, so the distribution's openssl.cnf (whose default
// extensions would mark every certificate a CA) never applies.
function config(
  files: CertificateFiles,
  commonName: string,
  extensions: string[],
): { text: string; file: string } {
  const text = [
    '[req]',
    'distinguished_name = dn',
    'prompt = no',
    'x509_extensions = ext',
    '[dn]',
    `CN = ${commonName}`,
    '[ext]',
    ...extensions,
    '',
  ].join('\n');
  return { text, file: `${files.cert}.cnf` };
}
