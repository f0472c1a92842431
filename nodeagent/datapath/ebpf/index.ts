// The kernel datapath: bpf/meshplane.bpf.o's maps and tc programs, driven
// through Debian's libbpf (koffi). Public surface:
//   EbpfDatapath.open({ pinDir, ...capacity })  the Datapath backend
//   defaultPinDir(runId, node) / removePins(dir) pin directory helpers
//   Libbpf                                      one per process, shared by the above
// See README.md in this folder for how to attach programs and read events.
export { EbpfDatapath, EBPF_DEFAULT_CAPACITY, type EbpfDatapathOptions } from './ebpf-datapath.js';
export type { KernelDigestCounts, KernelDigests } from './kernel-digest.js';
export { Libbpf, BpfError } from './libbpf.js';
export { KernelMap, type DumpedRecords } from './kernel-map.js';
export { PolicyTable } from './policy-table.js';
export { POLICY_INNER_FLAGS } from './maps.js';
export { policyKeyOfId } from './policy-key-id.js';
export {
  TC_HANDLE,
  TC_PRIORITY,
  attachedPrograms,
  findEndpointInterface,
  netnsPath,
  withNetns,
  type Interface,
  type Netns,
} from './attach.js';
export { EndpointAttacher, type AttacherEvents } from './attacher.js';
export {
  FlowEventReader,
  REASONS,
  reasonVerdict,
  type CounterSample,
  type FlowDirection,
  type FlowEvent,
  type Reason,
} from './events.js';
export { defaultPinDir, layoutDir, removePins, ensureBpffs, BPFFS_ROOT } from './pins.js';
export { DEFAULT_OBJECT_PATH, PINNED_MAPS } from './object.js';
export {
  LAYOUT_VERSION,
  STRUCTS,
  decodeAddress,
  encodeEpInfo,
  encodeIpcacheKey,
  encodeIpcacheValue,
  encodePolicyKey,
  encodePolicyValue,
  decodePolicy,
  encodeRangeKey,
  encodeSlot,
  decodeRangeKey,
  type FieldLayout,
  type StructLayout,
} from './layout.js';
export {
  commitRanges,
  decodeTrie,
  deriveRangePrefixes,
  expectedRanges,
  isRange,
  planRanges,
  rangeCapacityProblems,
  rangeGroupId,
  type PrefixId,
  type RangeMirror,
  type RangePlan,
} from './ranges.js';
