// A stand-in control plane replica for the allocation race test: its own
// process, its own etcd client (and lease), allocating the given label sets
// in its own order with some concurrency — one at a time (`allocate`), or with
// `many` in batches of 20 through allocateMany (its cache and one-transaction
// minting). Prints {app: id} as JSON.
import { Etcd3 } from 'etcd3';
import { systemClock } from '../../common/index.js';
import { IdentityAllocator } from '../../controlplane/identity/index.js';
import { keyLayout } from '../../controlplane/store/index.js';

const [endpoint, countText, seedText, mode] = process.argv.slice(2);
const count = Number(countText);
let seed = Number(seedText);
const random = (): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const sets = Array.from({ length: count }, (_, i) => ({
  'k8s:app': `app-${i}`,
  'k8s:io.kubernetes.pod.namespace': 'race',
}));
for (let i = sets.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [sets[i], sets[j]] = [sets[j]!, sets[i]!];
}
const etcd = new Etcd3({ hosts: endpoint! });
// Hold a lease like a replica does, so the test also covers two live sessions.
const lease = etcd.lease(10);
await lease.grant();
const allocator = new IdentityAllocator(etcd, keyLayout(), systemClock, { maxAttempts: 10_000 });
const out: Record<string, number> = {};
let next = 0;
const cluster = { name: mode === 'many' ? 'race-many' : 'race', id: 9 };
await Promise.all(
  Array.from({ length: mode === 'many' ? 4 : 16 }, async () => {
    while (next < sets.length) {
      if (mode === 'many') {
        const batch = sets.slice(next, (next += 20));
        const got = await allocator.allocateMany(cluster, batch);
        batch.forEach((labels, i) => (out[labels['k8s:app']] = got[i]!.id));
        continue;
      }
      const labels = sets[next++]!;
      const a = await allocator.allocate(cluster, labels);
      out[labels['k8s:app']] = a.id;
    }
  }),
);
await lease.revoke();
etcd.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
