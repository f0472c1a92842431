// The certificates `meshctl up` issues, read back with openssl and node:crypto.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeMeshTls, type MeshTls } from '../../common/tls/index.js';
import { tempDir, type TempDir } from '../harness/index.js';

const run = promisify(execFile);

describe('mesh certificates', () => {
  let work: TempDir;
  let tls: MeshTls;
  const cert = async (file: string) => new X509Certificate(await readFile(file));

  beforeAll(async () => {
    work = await tempDir('tls-');
    tls = await writeMeshTls(join(work.path, 'tls'), {
      agents: [
        { cluster: 'eu', node: 'eu-1' },
        { cluster: 'us', node: 'us-1' },
      ],
      adminUser: 'ops',
      serverNames: ['10.0.0.7', 'cp.example'],
    });
  });
  afterAll(async () => work?.cleanup());

  it('gives each agent its node identity as a SAN URI, ECDSA P-256, signed by the mesh CA', async () => {
    const ca = await cert(tls.ca.cert);
    expect(ca.ca).toBe(true);
    const eu1 = await cert(tls.agents.get('eu/eu-1')!.cert);
    expect(eu1.subjectAltName).toBe('URI:spiffe://meshplane/cluster/eu/node/eu-1');
    expect(eu1.ca).toBe(false);
    expect(eu1.publicKey.asymmetricKeyType).toBe('ec');
    expect(eu1.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(eu1.verify(ca.publicKey)).toBe(true);
    expect(eu1.checkIssued(ca)).toBe(true);

    const text = (
      await run('openssl', ['x509', '-in', tls.agents.get('us/us-1')!.cert, '-noout', '-text'])
    ).stdout;
    expect(text).toContain('URI:spiffe://meshplane/cluster/us/node/us-1');
    expect(text).toContain('NIST CURVE: P-256');
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toMatch(/CA:FALSE/);
  });

  it('gives the control plane a server certificate for loopback and the names asked for', async () => {
    const server = await cert(tls.controlPlane.cert);
    const san = server.subjectAltName ?? '';
    for (const name of [
      'DNS:controlplane.meshplane',
      'IP Address:127.0.0.1',
      'DNS:localhost',
      'IP Address:10.0.0.7',
      'DNS:cp.example',
    ]) {
      expect(san).toContain(name);
    }
    expect(san).not.toContain('spiffe://');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
  });

  it('gives meshctl an admin identity', async () => {
    const admin = await cert(tls.admin.cert);
    expect(admin.subjectAltName).toBe('URI:spiffe://meshplane/admin/ops');
    expect(admin.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth only
  });

  it('keeps keys 0600 in a 0700 dir', async () => {
    expect((await stat(tls.dir)).mode & 0o777).toBe(0o700);
    for (const key of [
      tls.ca.key,
      tls.controlPlane.key,
      tls.admin.key,
      tls.agents.get('eu/eu-1')!.key,
    ]) {
      expect((await stat(key)).mode & 0o777, key).toBe(0o600);
    }
  });

  it('refuses a node name that could forge another identity', async () => {
    await expect(
      writeMeshTls(join(work.path, 'bad'), {
        agents: [{ cluster: 'eu', node: 'x/node/eu-1' }],
        adminUser: 'ops',
      }),
    ).rejects.toThrow(/cannot be part of a certificate identity/);
  });
});
