import { describe, expect, it } from 'vitest';
import {
  Backoff,
  RevisionAssembler,
  parseAgentArgs,
  parseDuration,
} from '../../nodeagent/index.js';
import { DeltaDiscoveryResponse, TYPE_IPCACHE } from '../../proto/index.js';
import { part } from './fixtures.js';

describe('Backoff', () => {
  it('grows exponentially to the ceiling, jitters within bounds, and resets', () => {
    const mid = new Backoff({}, () => 0.5);
    expect(Array.from({ length: 8 }, () => mid.next())).toEqual([
      100, 200, 400, 800, 1600, 3200, 5000, 5000,
    ]);
    mid.reset();
    expect(mid.next()).toBe(100);
    expect(new Backoff({}, () => 0).next()).toBe(80);
    expect(new Backoff({}, () => 0.999999).next()).toBe(120);
    expect(new Backoff({ initialMs: 4000 }, () => 0.999999).next()).toBe(4800);
  });
});

describe('RevisionAssembler', () => {
  const p = (revision: number, nonce: string, complete = false) =>
    DeltaDiscoveryResponse.fromPartial(part({ typeUrl: TYPE_IPCACHE, revision, nonce, complete }));

  it('returns all parts once the complete one arrives, stamped with its receipt', () => {
    const a = new RevisionAssembler();
    expect(a.push(p(5, 'a'), 1)).toBeUndefined();
    expect(a.push(p(5, 'b'), 2)).toBeUndefined();
    const rev = a.push(p(5, 'c', true), 3);
    expect(rev).toMatchObject({ revision: 5, nonce: 'c', receivedAt: 3 });
    expect(rev?.parts.map((x) => x.nonce)).toEqual(['a', 'b', 'c']);
    expect(a.pending).toBe(0);
  });

  it('refuses a part of another revision before the current one completes', () => {
    const a = new RevisionAssembler();
    a.push(p(5, 'a'), 1);
    expect(() => a.push(p(6, 'b', true), 2)).toThrow(/before revision 5 was complete/);
  });
});

describe('command line', () => {
  it('parses durations', () => {
    expect(parseDuration('60s')).toBe(60_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('0')).toBe(0);
    expect(() => parseDuration('60')).toThrow(/not a duration/);
  });

  it('parses flags with defaults and collects every error', () => {
    const ok = parseAgentArgs([
      '--server',
      'cp:7000',
      '--cluster',
      'eu',
      '--node',
      'eu-1',
      '--capacity-policy-entries',
      '99',
      '--tls-ca',
      'ca.crt',
      '--tls-cert',
      'eu-1.crt',
      '--tls-key',
      'eu-1.key',
    ]);
    expect(ok).toEqual({
      ok: true,
      warnings: [],
      value: {
        server: 'cp:7000',
        cluster: 'eu',
        node: 'eu-1',
        datapath: 'emulated',
        verifyIntervalMs: 60_000,
        capacityIpcache: undefined,
        capacityEndpoints: undefined,
        capacityPolicyEntries: 99,
        pinDir: undefined,
        runId: 'default',
        netns: undefined,
        tls: { ca: 'ca.crt', cert: 'eu-1.crt', key: 'eu-1.key' },
      },
    });
    const bad = parseAgentArgs([
      '--server',
      'nohost',
      '--datapath',
      'xdp',
      '--capacity-ipcache',
      '0',
      '--insecure',
    ]);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.errors.map((e) => e.field)).toEqual([
        '--cluster',
        '--node',
        '--server',
        '--datapath',
        '--capacity-ipcache',
      ]);
    }
    expect(parseAgentArgs(['--bogus']).ok).toBe(false);
    const base = ['--server', 'cp:7000', '--cluster', 'eu', '--node', 'eu-1'];
    const fields = (argv: string[]): string[] => {
      const r = parseAgentArgs([...base, ...argv]);
      return r.ok ? [] : r.errors.map((e) => e.field ?? '');
    };
    // mTLS unless plain text is asked for explicitly; never half of it.
    expect(fields([])).toEqual(['--tls-ca', '--tls-cert', '--tls-key']);
    expect(fields(['--tls-ca', 'ca.crt'])).toEqual(['--tls-cert', '--tls-key']);
    expect(fields(['--insecure', '--tls-ca', 'ca.crt'])).toEqual(['--insecure']);
    expect(fields(['--insecure'])).toEqual([]);
  });
});
