import type { Etcd3 } from 'etcd3';
import type { ListIdentitiesResponse } from '../../proto/index.js';
import type { MeshModel } from '../model/index.js';
import type { KeyLayout } from '../store/index.js';

export interface IdentityListDeps {
  model: MeshModel;
  etcd: Etcd3;
  layout: KeyLayout;
}

/** Identities with their reference counts and, for unused ones, since when (GC bookkeeping). */
export async function listIdentities(
  d: IdentityListDeps,
  cluster: string,
): Promise<ListIdentitiesResponse> {
  const marks = await d.etcd.getAll().prefix(`${d.layout.bookkeeping}identity-unused/`).strings();
  const identities = [...d.model.identities()]
    .filter((i) => cluster === '' || i.cluster === cluster)
    .sort((a, b) => a.id - b.id)
    .map((i) => ({
      id: i.id,
      cluster: i.cluster,
      labels: i.labels.split('\n').filter(Boolean),
      endpoints: d.model.references(i.id),
      unusedSinceUnixMs: Number(marks[d.layout.identityUnused(i.cluster, i.id)] ?? 0),
    }));
  return { identities };
}
