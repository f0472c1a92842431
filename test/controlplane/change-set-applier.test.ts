// ChangeSetApplier with fakes for its narrow ports (sources, commits, audit):
// which clusters a change set goes to, all-or-nothing across clusters, and
// what the audit trail keeps. The real adapters are exercised in apply.test.ts.
import { describe, expect, it } from 'vitest';
import {
  MeshError,
  silentLogger,
  type SourceApplyReply,
  type SourceApplyRequest,
} from '../../common/index.js';
import type { AuditLog, AuditRecord } from '../../controlplane/audit/index.js';
import { ChangeSetApplier, type ClusterSources } from '../../controlplane/changeset/index.js';

const files = [{ path: 'p.yaml', text: 'kind: X' }];

function fakeAudit(): AuditLog & { records: Map<string, AuditRecord> } {
  const records = new Map<string, AuditRecord>();
  return {
    records,
    record: (r) => {
      records.set(r.id, structuredClone(r));
      return Promise.resolve();
    },
    list: () => Promise.resolve([...records.values()]),
  };
}

function setup(
  members: string[],
  answer: (cluster: string, req: SourceApplyRequest) => SourceApplyReply | Error,
  refusal?: string,
) {
  const asked: string[] = [];
  const sources: ClusterSources = {
    request: (cluster, req) => {
      asked.push(`${cluster}:${req.dryRun ? 'check' : 'write'}`);
      const a = answer(cluster, req);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
  const audit = fakeAudit();
  let n = 0;
  const applier = new ChangeSetApplier({
    sources,
    awaitCommitted: (cluster, sequence) =>
      refusal !== undefined
        ? Promise.reject(new MeshError('VALIDATION', refusal))
        : Promise.resolve(100 * sequence + members.indexOf(cluster)),
    audit,
    members: () => members,
    latestRevision: () => 7,
    clock: { now: () => Date.parse('2026-11-22T06:00:00Z') },
    newId: () => `cs-${(n += 1)}`,
    log: silentLogger(),
  });
  return { applier, asked, audit };
}

const written = (sequence: number): SourceApplyReply => ({
  ok: true,
  objects: [{ key: 'CiliumNetworkPolicy/shop/p', action: 'created' }],
  sequence,
  unchanged: false,
});
const input = { who: 'spiffe://meshplane/admin/ops', files, mode: 'apply' as const };

describe('ChangeSetApplier', () => {
  it('goes to the only cluster when none is named, and refuses to guess among several', async () => {
    const one = setup(['eu'], () => written(3));
    const r = await one.applier.apply({ ...input, clusters: [], allClusters: false });
    expect(r).toMatchObject({
      ok: true,
      revision: 300,
      clusters: [{ cluster: 'eu', revision: 300 }],
    });
    expect(one.asked).toEqual(['eu:write']);

    const two = setup(['eu', 'us'], () => written(3));
    const refused = await two.applier.apply({ ...input, clusters: [], allClusters: false });
    expect(refused).toEqual({
      ok: false,
      errors: [
        {
          message:
            'the mesh has 2 clusters (eu, us): name one with --cluster, or use --all-clusters',
          severity: 'error',
        },
      ],
    });
    expect(two.asked).toEqual([]);
    expect(two.audit.records.size).toBe(0);
  });

  it('refuses a cluster that is not a member', async () => {
    const { applier, asked } = setup(['eu'], () => written(3));
    const r = await applier.apply({ ...input, clusters: ['mars'], allClusters: false });
    expect(r).toMatchObject({ ok: false, errors: [{ message: expect.stringContaining('mars') }] });
    expect(asked).toEqual([]);
  });

  it('writes to no cluster unless every cluster accepts the change set', async () => {
    const { applier, asked, audit } = setup(['eu', 'us'], (cluster) =>
      cluster === 'us'
        ? {
            ok: false,
            errors: [{ file: 'p.yaml', document: 0, message: 'bad', severity: 'error' }],
          }
        : written(1),
    );
    const r = await applier.apply({ ...input, clusters: [], allClusters: true });
    expect(r).toEqual({
      ok: false,
      errors: [{ cluster: 'us', file: 'p.yaml', document: 0, message: 'bad', severity: 'error' }],
    });
    expect(asked.sort()).toEqual(['eu:check', 'us:check']);
    expect([...audit.records.values()]).toMatchObject([
      { status: 'failed', revision: 0, error: 'p.yaml: document 0: bad' },
    ]);
  });

  it('returns the highest commit revision of its clusters and audits it', async () => {
    const { applier, asked, audit } = setup(['eu', 'us'], (cluster) =>
      written(cluster === 'eu' ? 4 : 2),
    );
    const r = await applier.apply({ ...input, clusters: [], allClusters: true });
    expect(r).toMatchObject({ ok: true, id: 'cs-1', revision: 400 });
    expect(asked.sort()).toEqual(['eu:check', 'eu:write', 'us:check', 'us:write']);
    expect(audit.records.get('cs-1')).toEqual({
      id: 'cs-1',
      who: 'spiffe://meshplane/admin/ops',
      at: '2026-11-22T06:00:00.000Z',
      action: 'apply',
      status: 'committed',
      revision: 400,
      clusters: [
        { cluster: 'eu', revision: 400, sequence: 4, unchanged: false },
        { cluster: 'us', revision: 201, sequence: 2, unchanged: false },
      ],
      objects: [
        { cluster: 'eu', key: 'CiliumNetworkPolicy/shop/p', action: 'created' },
        { cluster: 'us', key: 'CiliumNetworkPolicy/shop/p', action: 'created' },
      ],
      files: ['p.yaml'],
    });
  });

  it('passes an unreachable source on as a typed error, with the attempt on record', async () => {
    const { applier, audit } = setup(
      ['eu'],
      () => new MeshError('UNAVAILABLE', 'the source of cluster eu is not connected'),
    );
    await expect(
      applier.apply({ ...input, clusters: ['eu'], allClusters: false }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect([...audit.records.values()]).toMatchObject([
      { status: 'failed', error: 'the source of cluster eu is not connected' },
    ]);
  });

  it('answers a change set that changes nothing with the revision in force', async () => {
    const { applier } = setup(['eu'], () => ({
      ok: true,
      objects: [{ key: 'CiliumNetworkPolicy/shop/p', action: 'unchanged' }],
      unchanged: true,
    }));
    const r = await applier.apply({ ...input, clusters: ['eu'], allClusters: false });
    expect(r).toMatchObject({ ok: true, revision: 7 });
  });

  it('says so when the ingest refuses a change set its source already wrote', async () => {
    const { applier } = setup(['eu'], () => written(5), 'pod IP 10.1.0.9 is used by us/web');
    await expect(
      applier.apply({ ...input, clusters: ['eu'], allClusters: false }),
    ).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining(
        "pod IP 10.1.0.9 is used by us/web. The change set is in cluster eu's folder, but the mesh keeps its previous state",
      ),
    });
  });
});
