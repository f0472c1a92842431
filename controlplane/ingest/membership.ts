import type { Etcd3 } from 'etcd3';
import { MeshError, type Clock } from '../../common/index.js';
import type { KeyLayout } from '../store/index.js';
import type { Membership, SourcePosition } from './plan.js';

export interface MembershipHooks {
  /** where the event stream ends now (the new member's starting position) */
  streamPosition?: () => Promise<SourcePosition>;
  /**
   * after a successful join: ask the cluster's source to republish (with the
   * joining caller's W3C trace context, so the revision is in its trace)
   */
  onJoined?: (cluster: string, traceContext?: Record<string, string>) => void;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Cluster membership in etcd. Join claims the name (under the cluster's
 * prefix) and the id (a bookkeeping index) in one transaction, so two joins
 * racing for a name or an id cannot both win. Remove deletes the cluster's
 * whole prefix — identities, endpoints, exports — and its id claim in one
 * transaction: one mesh revision.
 */
export class ClusterMembership {
  readonly #etcd: Etcd3;
  readonly #layout: KeyLayout;
  readonly #clock: Clock;
  readonly #hooks: MembershipHooks;

  constructor(etcd: Etcd3, layout: KeyLayout, clock: Clock, hooks: MembershipHooks = {}) {
    this.#etcd = etcd;
    this.#layout = layout;
    this.#clock = clock;
    this.#hooks = hooks;
  }

  async join(
    name: string,
    id: number,
    opts: { traceContext?: Record<string, string> } = {},
  ): Promise<{ member: Membership; revision: number; existed: boolean }> {
    if (!DNS_LABEL.test(name))
      throw new MeshError('VALIDATION', `cluster name ${JSON.stringify(name)} is not a DNS label`);
    if (!Number.isInteger(id) || id < 1 || id > 255)
      throw new MeshError('VALIDATION', `cluster id ${id} is outside 1..255`);
    const L = this.#layout;
    const member = { name, id, joinedAt: new Date(this.#clock.now()).toISOString() };
    const res = await this.#etcd
      .if(L.member(name), 'Create', '==', 0)
      .and(L.clusterIdOwner(id), 'Create', '==', 0)
      .then(
        this.#etcd.put(L.member(name)).value(JSON.stringify(member)),
        this.#etcd.put(L.clusterIdOwner(id)).value(name),
      )
      .else(this.#etcd.get(L.member(name)), this.#etcd.get(L.clusterIdOwner(id)))
      .commit();
    if (res.succeeded) {
      this.#hooks.onJoined?.(name, opts.traceContext);
      return { member, revision: Number(res.header.revision), existed: false };
    }
    const existingMember = res.responses[0]?.response_range?.kvs[0];
    const owner = res.responses[1]?.response_range?.kvs[0]?.value.toString();
    if (existingMember) {
      const m = JSON.parse(existingMember.value.toString()) as Membership;
      if (m.id === id) return { member: m, revision: Number(res.header.revision), existed: true };
      throw new MeshError('CLUSTER_CLASH', `cluster ${name} is already a member with id ${m.id}`);
    }
    throw new MeshError(
      'CLUSTER_CLASH',
      `cluster id ${id} is already taken by cluster ${owner ?? '(unknown)'}`,
    );
  }

  async remove(name: string): Promise<{ revision: number }> {
    const L = this.#layout;
    const current = await this.#etcd.get(L.member(name)).exec();
    const kv = current.kvs[0];
    if (!kv) throw new MeshError('NOT_FOUND', `cluster ${name} is not a member of the mesh`);
    const m = JSON.parse(kv.value.toString()) as Membership;
    const res = await this.#etcd
      .if(L.member(name), 'Mod', '==', Number(kv.mod_revision))
      .then(
        this.#etcd.delete().prefix(L.cluster(name)),
        this.#etcd.delete().key(L.clusterIdOwner(m.id)),
        this.#etcd.delete().prefix(L.identityUnused(name, '')),
      )
      .commit();
    if (!res.succeeded)
      throw new MeshError('CONFLICT', `cluster ${name} changed while being removed; try again`);
    return { revision: Number(res.header.revision) };
  }
}
