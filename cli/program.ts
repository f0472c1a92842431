import { Command } from 'commander';
import type { CliTelemetry } from './call-tracing.js';
import { registerApply } from './commands/apply.js';
import { registerClusters } from './commands/clusters.js';
import { registerEndpoints } from './commands/endpoints.js';
import { registerHistory } from './commands/history.js';
import { registerLab } from './commands/lab.js';
import { registerObserve } from './commands/observe.js';
import { registerIdentities } from './commands/identities.js';
import { registerPolicies } from './commands/policies.js';
import { registerServices } from './commands/services.js';
import { registerSimulate } from './commands/simulate.js';
import { registerSkew } from './commands/skew.js';
import { registerStatus } from './commands/status.js';
import { registerUp } from './commands/up.js';
import { registerWait } from './commands/wait.js';

/**
 * Every meshctl command, wired to what the composition root built (the
 * tracer the commands that change the mesh or wait for it trace with).
 * Throws CommanderError/CliExit; main.ts turns them into exit codes.
 */
export function buildMeshctl(telemetry: CliTelemetry): Command {
  const program = new Command('meshctl')
    .description('meshplane: one zero-trust network across Kubernetes clusters, enforced with eBPF')
    .exitOverride()
    .showHelpAfterError()
    // options belong to the command they follow: `meshctl clusters join --server X`
    // gives --server to `join`, not to its parent `clusters`
    .enablePositionalOptions();
  registerUp(program);
  registerStatus(program);
  registerClusters(program, telemetry);
  registerIdentities(program);
  registerEndpoints(program);
  registerPolicies(program);
  registerServices(program);
  registerSimulate(program);
  registerLab(program);
  registerApply(program, telemetry);
  registerHistory(program);
  registerSkew(program);
  registerWait(program, telemetry);
  registerObserve(program);
  return program;
}
