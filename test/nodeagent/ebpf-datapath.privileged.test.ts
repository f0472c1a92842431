// The eBPF backend against the shared Datapath contract, on the real kernel:
// each datapath gets its own pin dir under /sys/fs/bpf/meshplane/<run-id>/,
// removed when the test ends (also on failure).
import { afterAll, describe } from 'vitest';
import { requirePrivileged } from '../harness/index.js';
import {
  Libbpf,
  encodeIpcacheKey,
  encodeIpcacheValue,
} from '../../nodeagent/datapath/ebpf/index.js';
import { describeDatapathContract } from './datapath-contract.js';
import { activePin, bpftoolUpdate, newRunId, openDatapath, pinDirs } from './ebpf-helpers.js';

describe.skipIf(!requirePrivileged())('eBPF datapath', () => {
  const lib = new Libbpf();
  const pins = pinDirs(newRunId('contract'));
  afterAll(() => pins.cleanup());

  describeDatapathContract('ebpf', async (capacity) => {
    const pinDir = pins.next();
    const datapath = await openDatapath(lib, { pinDir, ...capacity });
    return {
      datapath,
      tamperIpcache: (prefix, identity) =>
        bpftoolUpdate(
          activePin(datapath, 'ipcache'),
          encodeIpcacheKey(prefix),
          encodeIpcacheValue(identity),
        ),
      dispose: async () => {
        await datapath.close();
      },
    };
  });
});
