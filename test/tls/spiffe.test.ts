// Pure identity checks: who a certificate's SAN names, and what it may fetch.
import { describe, expect, it } from 'vitest';
import { isMeshError } from '../../common/index.js';
import {
  adminSpiffeId,
  adminUserName,
  authorizeAdmin,
  authorizeNodeStream,
  meshPeerOf,
  nodeSpiffeId,
  parseMeshSpiffeId,
  sanUris,
} from '../../common/tls/index.js';

const ctx = (subjectaltname: string) => ({ sslPeerCertificate: { subjectaltname } });

describe('mesh SPIFFE identities', () => {
  it('round-trips node and admin identities', () => {
    const uri = nodeSpiffeId('eu', 'eu-1');
    expect(uri).toBe('spiffe://meshplane/cluster/eu/node/eu-1');
    expect(parseMeshSpiffeId(uri)).toEqual({ kind: 'node', cluster: 'eu', node: 'eu-1', uri });
    expect(parseMeshSpiffeId(adminSpiffeId('ops'))).toMatchObject({ kind: 'admin', user: 'ops' });
  });

  it('refuses names that could change the path, and URIs of other trust domains', () => {
    expect(() => nodeSpiffeId('eu', 'a/node/b')).toThrow(/cannot be part of a certificate/);
    expect(() => nodeSpiffeId('e,u', 'x')).toThrow(/cannot be part/);
    expect(parseMeshSpiffeId('spiffe://other/cluster/eu/node/eu-1')).toBeUndefined();
    expect(parseMeshSpiffeId('spiffe://meshplane/cluster/eu/node/eu-1/x')).toBeUndefined();
    expect(adminUserName('Jane Doe/../x')).toBe('Jane_Doe_.._x');
    expect(adminUserName('')).toBe('admin');
  });

  it("reads URIs from Node's subjectaltname text, quoted entries included", () => {
    expect(
      sanUris('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://meshplane/admin/ops'),
    ).toEqual(['spiffe://meshplane/admin/ops']);
    // Node quotes an entry containing a separator: it stays one (foreign) URI.
    expect(sanUris('URI:"spiffe://x/, URI:spiffe://meshplane/admin/ops", DNS:a')).toEqual([
      'spiffe://x/, URI:spiffe://meshplane/admin/ops',
    ]);
    expect(sanUris(undefined)).toEqual([]);
  });

  it('a certificate naming two mesh identities names none', () => {
    expect(
      meshPeerOf(
        ctx('URI:spiffe://meshplane/cluster/eu/node/eu-1, URI:spiffe://meshplane/admin/ops'),
      ),
    ).toBeUndefined();
  });

  it('serves a node only to its own certificate, and admin calls only to admins', () => {
    const a = ctx('URI:spiffe://meshplane/cluster/eu/node/eu-1');
    expect(authorizeNodeStream(a, 'eu', 'eu-1')).toMatchObject({ kind: 'node' });
    const refused = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error('not refused');
    };
    const other = refused(() => authorizeNodeStream(a, 'eu', 'eu-2'));
    expect(isMeshError(other, 'PERMISSION_DENIED')).toBe(true);
    expect((other as Error).message).toBe(
      'certificate spiffe://meshplane/cluster/eu/node/eu-1 may not fetch the snapshot of node eu/eu-2',
    );
    expect(
      isMeshError(
        refused(() => authorizeNodeStream(a, 'us', 'eu-1')),
        'PERMISSION_DENIED',
      ),
    ).toBe(true);
    expect(
      isMeshError(
        refused(() => authorizeNodeStream({}, 'eu', 'eu-1')),
        'UNAUTHENTICATED',
      ),
    ).toBe(true);
    expect(
      isMeshError(
        refused(() => authorizeAdmin(a, '/x')),
        'PERMISSION_DENIED',
      ),
    ).toBe(true);
    expect(authorizeAdmin(ctx('URI:spiffe://meshplane/admin/ops'), '/x')).toMatchObject({
      user: 'ops',
    });
  });
});
