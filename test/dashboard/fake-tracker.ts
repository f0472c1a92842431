import type {
  TrackedApply,
  TrackedEvent,
  TrackedNode,
  TrackedRevision,
  TrackerReads,
} from '../../controlplane/dashboard/index.js';

type FakeNode = Omit<TrackedNode, 'lagMs'> & { pendingSince: number };

/**
 * A complete in-memory `TrackerReads`: tests set what the tracker would
 * report and emit its events. `lagMs` is computed from `pendingSince` against
 * the injected clock, as the real tracker does.
 */
export class FakeTracker implements TrackerReads {
  latestRevision = 0;
  latestCommitTime = 0;
  readonly nodesByCluster = new Map<string, Map<string, FakeNode>>();
  revisionList: TrackedRevision[] = [];
  readonly histories = new Map<string, TrackedApply[]>();
  readonly #listeners = new Set<(e: TrackedEvent) => void>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  setNode(
    cluster: string,
    n: Partial<Omit<TrackedNode, 'lagMs'> & { pendingSince: number }> & { name: string },
  ): void {
    const nodes = this.nodesByCluster.get(cluster) ?? new Map<string, FakeNode>();
    this.nodesByCluster.set(cluster, nodes);
    const old = nodes.get(n.name);
    nodes.set(n.name, {
      state: 'in-sync',
      ackedRevision: 0,
      syncedRevision: 0,
      since: 0,
      error: '',
      pendingSince: 0,
      ...old,
      ...n,
    });
  }

  removeNode(cluster: string, name: string): void {
    this.nodesByCluster.get(cluster)?.delete(name);
  }

  emit(e: TrackedEvent): void {
    for (const l of this.#listeners) l(e);
  }

  clusters(): { name: string; nodes: TrackedNode[] }[] {
    const now = this.#now();
    return [...this.nodesByCluster.entries()].map(([name, nodes]) => ({
      name,
      nodes: [...nodes.values()].map(({ pendingSince, ...n }) => ({
        ...n,
        lagMs: pendingSince > 0 ? now - pendingSince : 0,
      })),
    }));
  }

  revisions(): TrackedRevision[] {
    return this.revisionList.map((r) => ({ ...r }));
  }

  node(cluster: string, node: string): { history: readonly TrackedApply[] } | undefined {
    return this.nodesByCluster.get(cluster)?.has(node)
      ? { history: this.histories.get(`${cluster}/${node}`) ?? [] }
      : undefined;
  }

  subscribe(listener: (e: TrackedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }
}
