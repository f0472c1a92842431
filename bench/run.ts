// `npm run bench -- NAME [--json] [options]`: runs one benchmark. Benchmarks register
// here as they are written (DESIGN.md lists the planned ones and their keys);
// each gets `--json` and the rest of its command line.
import { agentRevisionBench } from './agent-revision.js';
import { dashboardBench } from './dashboard.js';
import { datapathBench } from './datapath.js';
import { datapathMapsBench } from './datapath-maps.js';
import { datapathProgBench } from './datapath-prog.js';
import { identityChurnBench } from './identity-churn.js';
import { policyCompileBench } from './policy-compile.js';
import { propagationBench } from './propagation.js';
import { propagationCpuBench } from './propagation-cpu.js';
import { propagationFloorBench } from './propagation-floor.js';
import { servicesBench } from './services.js';
import { servicesReplayBench } from './services-replay.js';
import { trackerBench } from './tracker.js';

const benches: Record<string, (json: boolean, argv: readonly string[]) => Promise<void>> = {
  'agent-revision': agentRevisionBench,
  dashboard: dashboardBench,
  datapath: datapathBench,
  'datapath-maps': datapathMapsBench,
  'datapath-prog': datapathProgBench,
  'identity-churn': identityChurnBench,
  'policy-compile': policyCompileBench,
  propagation: propagationBench,
  'propagation-cpu': propagationCpuBench,
  'propagation-floor': propagationFloorBench,
  services: servicesBench,
  'services-replay': servicesReplayBench,
  tracker: trackerBench,
};

const [name, ...rest] = process.argv.slice(2);
const json = rest.includes('--json');
const available = Object.keys(benches);
if (name === undefined || !(name in benches)) {
  process.stderr.write(
    `usage: npm run bench -- NAME [--json]\n` +
      `${name === undefined ? '' : `no benchmark named ${name}; `}available: ${available.length > 0 ? available.join(', ') : '(none yet)'}\n`,
  );
  process.exit(2);
}
await benches[name]!(json, rest);
