import type { PeerLookup, PeerName } from './enrich.js';

/** The part of the mesh model the index reads (controlplane/model's MeshModel fits). */
export interface PodSource {
  pods(): Iterable<{ cluster: string; namespace: string; name: string; ips: readonly string[] }>;
}

/**
 * IP → endpoint over the control plane's mesh model, rebuilt lazily when the
 * observed etcd revision moved (flows are looked up far more often than pods
 * change). Not safe across concurrent model mutation; the control plane is
 * single-threaded.
 */
export class PeerIndex implements PeerLookup {
  readonly #source: PodSource;
  readonly #revision: () => number;
  #builtAt = -1;
  #byIp = new Map<string, PeerName>();

  constructor(source: PodSource, revision: () => number) {
    this.#source = source;
    this.#revision = revision;
  }

  endpointOf(ip: string): PeerName | undefined {
    const rev = this.#revision();
    if (rev !== this.#builtAt) {
      const byIp = new Map<string, PeerName>();
      for (const p of this.#source.pods())
        for (const addr of p.ips)
          byIp.set(addr, { cluster: p.cluster, namespace: p.namespace, pod: p.name });
      this.#byIp = byIp;
      this.#builtAt = rev;
    }
    return this.#byIp.get(ip);
  }
}
