/**
 * Test hosts on one machine (DESIGN.md "Test hosts, lab and demo on one
 * machine"): per run, one network namespace per node, one per pod behind its
 * node, a fabric routing between nodes and world peers in 198.18.0.0/15, and
 * an mp-host process in every pod serving its ports and making real
 * connection attempts. Used by the privileged tests, `meshctl lab` and the
 * datapath benchmark; everything a run makes goes away with it.
 */
export {
  WORLD_RANGE,
  inWorldRange,
  nodeKey,
  planTestbed,
  podKey,
  type NodeSpec,
  type Plan,
  type PlannedNode,
  type PlannedPod,
  type PlannedWorld,
  type PodSpec,
  type PortsSpec,
  type TestbedSpec,
  type WorldSpec,
} from './plan.js';
export { HostProcess, type LoadResult, type Outcome } from './host-process.js';
export { buildMpHost, buildNative } from './native-build.js';
export { run } from './command.js';
export {
  BPF_PIN_ROOT,
  Testbed,
  createTestbed,
  listRunNamespaces,
  newRunId,
  type ProbeOutcome,
} from './testbed.js';
export { testbedSpecOf, type ServedPort } from './from-mesh.js';
export {
  PROTO,
  attachedProgramId,
  ipv4Packet,
  testRunProgram,
  type PacketSpec,
  type TestRunResult,
} from './prog-run.js';
