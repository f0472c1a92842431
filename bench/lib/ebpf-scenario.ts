import type { Scenario } from '../datapath.js';

/**
 * The meshplane scenarios of the datapath benchmark: the eBPF datapath
 * attached to both pods' host-side veths with N policy entries on the server.
 * Empty (with the reason) until the eBPF backend's attach API is in main.
 */
export function ebpfScenarios(
  _entries: readonly number[],
): Promise<{ scenarios: Scenario[]; skipped?: string; mapEntriesPerS?: number }> {
  return Promise.resolve({
    scenarios: [],
    skipped: 'ebpf_*: the eBPF datapath cannot attach to endpoints yet (nodeagent/datapath/ebpf)',
  });
}
