// nats-server with an authorization block: the config the launcher writes,
// readiness with auth on, and what the server does with it (real nats-server 2.9).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMeshError } from '../common/index.js';
import { natsAuthorizationConfig, startNats, type NatsServer } from '../launcher/index.js';

const ADMIN_PASS = 'admin-password-0123456789abcdef';
const LIMITED_PASS = 'limited-password-0123456789abcdef';
const MUTE_PASS = 'mute-password-0123456789abcdef';

describe('startNats with natsAuthorization', () => {
  let nats: NatsServer;
  const logLines: string[] = [];

  beforeAll(async () => {
    nats = await startNats({
      startTimeoutMs: 45_000,
      log: (line) => logLines.push(line),
      natsAuthorization: {
        users: [
          { user: 'admin', password: ADMIN_PASS },
          {
            user: 'limited',
            password: LIMITED_PASS,
            permissions: { publish: ['allowed.one'], subscribe: ['_INBOX.>'] },
          },
          // Empty lists mean "nothing", not nats-server's "no restriction".
          { user: 'mute', password: MUTE_PASS, permissions: { publish: [], subscribe: [] } },
        ],
      },
    });
  }, 60_000);
  afterAll(async () => {
    await nats?.stop();
  });

  it('becomes ready, with the config readable by its owner only', () => {
    const conf = join(nats.dataDir, 'nats-server.conf');
    expect(statSync(conf).mode & 0o777).toBe(0o600);
    expect(readFileSync(conf, 'utf8')).toContain('authorization {');
  });

  it('never logs a password', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const all = logLines.join('\n');
    for (const pass of [ADMIN_PASS, LIMITED_PASS, MUTE_PASS]) expect(all).not.toContain(pass);
  });

  it('refuses a connection without credentials or with a wrong password', async () => {
    await expect(connect({ servers: nats.url })).rejects.toMatchObject({
      code: 'AUTHORIZATION_VIOLATION',
    });
    await expect(
      connect({ servers: nats.url, user: 'limited', pass: ADMIN_PASS }),
    ).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
  });

  it('lets a user without permissions use JetStream', async () => {
    const nc = await connect({ servers: nats.url, user: 'admin', pass: ADMIN_PASS });
    try {
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: 'auth_test', subjects: ['allowed.>'] });
      const ack = await nc.jetstream().publish('allowed.x', new TextEncoder().encode('x'));
      expect(ack.seq).toBe(1);
    } finally {
      await nc.close();
    }
  });

  it('applies allow lists, and empty lists deny everything', async () => {
    const limited = await connect({ servers: nats.url, user: 'limited', pass: LIMITED_PASS });
    const mute = await connect({ servers: nats.url, user: 'mute', pass: MUTE_PASS });
    try {
      await expect(publishRefused(limited, 'allowed.one')).resolves.toBe(false);
      await expect(publishRefused(limited, 'allowed.two')).resolves.toBe(true);
      await expect(publishRefused(mute, 'allowed.one')).resolves.toBe(true);
    } finally {
      await Promise.all([limited.close(), mute.close()]);
    }
  });
});

describe('natsAuthorizationConfig', () => {
  const ok = { user: 'u', password: 'p'.repeat(16) };

  it('writes users with allow-only permissions in nats-server 2.9 syntax', () => {
    const lines = natsAuthorizationConfig({
      users: [
        ok,
        { ...ok, user: 'v', permissions: { publish: ['a.b'], subscribe: ['_INBOX.v.>'] } },
      ],
    });
    expect(lines.join('\n')).toBe(
      [
        'authorization {',
        '  users: [',
        '    { user: "u", password: "pppppppppppppppp" }',
        '    { user: "v", password: "pppppppppppppppp", permissions: { publish: { allow: ["a.b"] }, subscribe: { allow: ["_INBOX.v.>"] } } }',
        '  ]',
        '}',
      ].join('\n'),
    );
  });

  it.each([
    ['a quote in a user name', [{ ...ok, user: 'u"x' }]],
    ['a short password', [{ ...ok, password: 'short' }]],
    ['a $ in a password (variable or bcrypt)', [{ ...ok, password: `$2a$${'x'.repeat(16)}` }]],
    ['a space in a subject', [{ ...ok, permissions: { publish: ['a b'], subscribe: [] } }]],
    ['a duplicate user', [ok, ok]],
    ['no users', []],
  ])('refuses %s with VALIDATION, never echoing the password', (_, users) => {
    let err: unknown;
    try {
      natsAuthorizationConfig({ users });
    } catch (e) {
      err = e;
    }
    expect(isMeshError(err, 'VALIDATION')).toBe(true);
    expect((err as Error).message).not.toContain('short');
  });
});

/** Publishes and round-trips a flush; true when the server answered with a permission violation. */
async function publishRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  const statuses = nc.status();
  let refused = false;
  void (async () => {
    for await (const s of statuses) {
      if (s.permissionContext?.subject === subject) refused = true;
    }
  })();
  nc.publish(subject, new Uint8Array());
  // The server handles a connection's protocol in order: its -ERR comes before the PONG.
  await nc.flush();
  // A macrotask: every microtask of the status iterator has run by then.
  await new Promise((resolve) => setTimeout(resolve, 20));
  // The watcher ends when the connection closes.
  return refused;
}
