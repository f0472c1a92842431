import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { MeshError } from '../errors.js';
import type { TlsFiles } from './mesh-tls.js';

/** PEM contents of a CA, a certificate and its key. Owned by the caller; never logged. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** Reads the three files; an error names the file that failed, never its content. */
export async function readTlsMaterial(
  files: TlsFiles,
  opts: { signal?: AbortSignal } = {},
): Promise<TlsMaterial> {
  const read = async (what: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file, opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      throw new MeshError('VALIDATION', `cannot read the ${what} ${file}`, { cause: err });
    }
  };
  const [ca, cert, key] = await Promise.all([
    read('CA certificate', files.ca),
    read('certificate', files.cert),
    read('private key', files.key),
  ]);
  return { ca, cert, key };
}

/**
 * Server side of mTLS: our certificate, and every client must present one
 * the mesh CA signed (grpc-js rejects the handshake otherwise).
 */
export function serverCredentials(tls: TlsMaterial | 'insecure'): grpc.ServerCredentials {
  if (tls === 'insecure') return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.ca,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    true,
  );
}

/**
 * The name every control plane certificate carries and every client checks,
 * whatever address it dials: the server proves it is *the control plane* of
 * this mesh CA (agent and admin certificates never carry it), and dialing an
 * IP needs no IP SAN (nor sends an IP as TLS server name, which RFC 6066
 * forbids and Node warns about).
 */
export const CONTROL_PLANE_SERVER_NAME = 'controlplane.meshplane';

/** What a gRPC client needs: credentials, and options to pass to the client constructor. */
export interface ClientTransport {
  credentials: grpc.ChannelCredentials;
  options: grpc.ChannelOptions;
}

/**
 * Client side: trust only the mesh CA (not the system store), present our
 * certificate, and expect the server to be the control plane.
 */
export function clientTransport(tls: TlsMaterial | 'insecure'): ClientTransport {
  if (tls === 'insecure') return { credentials: grpc.credentials.createInsecure(), options: {} };
  return {
    credentials: grpc.credentials.createSsl(tls.ca, tls.key, tls.cert),
    options: { 'grpc.ssl_target_name_override': CONTROL_PLANE_SERVER_NAME },
  };
}
