// The NATS permission set `meshctl up` gives each process (pure).
import { describe, expect, it } from 'vitest';
import { controlPlanePermissions, meshNatsUsers, sourcePermissions } from '../../cli/index.js';
import { isMeshError } from '../../common/index.js';

describe('sourcePermissions', () => {
  it("allows publishing only the cluster's own subjects and receiving only its own replies, resync and change-set requests", () => {
    expect(sourcePermissions('eu')).toEqual({
      publish: ['meshplane.events.eu', 'meshplane.events.eu.*', 'meshplane.health.eu'],
      subscribe: ['_INBOX.source.eu.>', 'meshplane.resync.eu', 'meshplane.apply.eu'],
      allowResponses: true,
    });
  });

  it('grants no JetStream API subject and no wildcard over other clusters', () => {
    const { publish, subscribe } = sourcePermissions('eu');
    for (const s of [...publish, ...subscribe]) {
      expect(s.startsWith('$JS')).toBe(false);
      expect(s).not.toMatch(/^(meshplane|_INBOX)\.(>|\*)/);
      expect(s).not.toBe('_INBOX.>');
    }
  });

  it.each(['', 'a.b', 'a*', '>', 'UPPER', 'a b', '-a'])(
    'refuses %j as a cluster name: it must be one NATS token',
    (name) => {
      let err: unknown;
      try {
        sourcePermissions(name);
      } catch (e) {
        err = e;
      }
      expect(isMeshError(err, 'VALIDATION')).toBe(true);
    },
  );
});

describe('meshNatsUsers', () => {
  let n = 0;
  const password = (): string => `password-${String((n += 1)).padStart(8, '0')}`;

  it('makes one user per source and one for the control plane, each with its own password', () => {
    const users = meshNatsUsers(['eu', 'us'], password);
    expect(users.authorization.users.map((u) => u.user)).toEqual([
      'controlplane',
      'source-eu',
      'source-us',
    ]);
    expect(new Set(users.authorization.users.map((u) => u.password)).size).toBe(3);
    expect(users.authorization.users[0]!.permissions).toEqual(controlPlanePermissions());
    expect(users.sources.get('us')).toEqual({
      user: 'source-us',
      pass: users.authorization.users[2]!.password,
      inboxPrefix: '_INBOX.source.us',
    });
    expect(users.controlPlane).toEqual({
      user: 'controlplane',
      pass: users.authorization.users[0]!.password,
    });
  });

  it('refuses a cluster listed twice', () => {
    let err: unknown;
    try {
      meshNatsUsers(['eu', 'eu'], password);
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'VALIDATION')).toBe(true);
  });
});
