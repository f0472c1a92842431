// Fixture for testbed.privileged.test.ts: makes a test bed with the run id
// given, says "ready", and waits to be killed without calling destroy().
import { createTestbed } from '../../hosts/index.js';

const runId = process.argv[2]!;
await createTestbed({
  runId,
  nodes: [{ cluster: 'c', name: 'n1' }],
  pods: [
    { cluster: 'c', namespace: 'a', name: 'p', node: 'n1', ip: '10.9.0.1', tcp: [80], udp: [] },
  ],
  world: [],
  podCidrs: ['10.9.0.0/16'],
});
process.stdout.write('ready\n');
setInterval(() => {}, 1000);
