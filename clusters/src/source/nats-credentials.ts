import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'nats';
import { MeshError } from '../../../common/index.js';

/**
 * A `--nats-creds` file as `meshctl up` writes it (mode 0600):
 * `{"user": "...", "pass": "...", "inboxPrefix": "..."}`. `inboxPrefix` is
 * where the server lets this user receive replies (JetStream PubAcks); it is
 * per user so that one source cannot read another's replies.
 */
export interface NatsCredentials {
  user: string;
  pass: string;
  inboxPrefix?: string;
}

/** Reads and checks a credentials file; VALIDATION names the file and the field, never the password. */
export async function readNatsCredentials(
  file: string,
  opts: { signal?: AbortSignal } = {},
): Promise<NatsCredentials> {
  let text: string;
  try {
    text = await readFile(file, {
      encoding: 'utf8',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw new MeshError('NOT_FOUND', `cannot read NATS credentials ${file}`, { cause: err });
  }
  return parseNatsCredentials(text, file);
}

export function parseNatsCredentials(text: string, file: string): NatsCredentials {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new MeshError('VALIDATION', `${file}: NATS credentials are not JSON`);
  }
  const obj = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const missing = ['user', 'pass'].filter((k) => typeof obj[k] !== 'string' || obj[k] === '');
  if (obj.inboxPrefix !== undefined && typeof obj.inboxPrefix !== 'string') {
    missing.push('inboxPrefix');
  }
  if (missing.length > 0) {
    throw new MeshError(
      'VALIDATION',
      `${file}: NATS credentials need a string ${missing.join(', ')}`,
    );
  }
  return {
    user: obj.user as string,
    pass: obj.pass as string,
    ...(typeof obj.inboxPrefix === 'string' ? { inboxPrefix: obj.inboxPrefix } : {}),
  };
}

/** The nats.js connection options that log in with these credentials. */
export function natsAuthOptions(creds: NatsCredentials): ConnectionOptions {
  return {
    user: creds.user,
    pass: creds.pass,
    ...(creds.inboxPrefix !== undefined ? { inboxPrefix: creds.inboxPrefix } : {}),
  };
}
