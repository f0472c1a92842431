// A stand-in control plane replica for the allocation race test: its own
// process, its own etcd client (and lease), allocating the given label sets
// in its own order with some concurrency. Prints {hash: id} as JSON.
import { Etcd3 } from 'etcd3';
import { systemClock } from '../../common/index.js';
import { IdentityAllocator } from '../../controlplane/identity/index.js';
import { keyLayout } from '../../controlplane/store/index.js';

const [endpoint, countText, seedText] = process.argv.slice(2);
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
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (next < sets.length) {
      const labels = sets[next++]!;
      const a = await allocator.allocate({ name: 'race', id: 9 }, labels);
      out[labels['k8s:app']] = a.id;
    }
  }),
);
await lease.revoke();
etcd.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
