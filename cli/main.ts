// meshctl: the command line of meshplane (composition root of the CLI).
import { Command, CommanderError } from 'commander';
import { isMeshError } from '../common/index.js';
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
import { CliExit, EXIT } from './exit-codes.js';

const program = new Command('meshctl')
  .description('meshplane: one zero-trust network across Kubernetes clusters, enforced with eBPF')
  .exitOverride()
  .showHelpAfterError()
  // options belong to the command they follow: `meshctl clusters join --server X`
  // gives --server to `join`, not to its parent `clusters`
  .enablePositionalOptions();
registerUp(program);
registerStatus(program);
registerClusters(program);
registerIdentities(program);
registerEndpoints(program);
registerPolicies(program);
registerServices(program);
registerSimulate(program);
registerLab(program);
registerApply(program);
registerHistory(program);
registerSkew(program);
registerWait(program);
registerObserve(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (err instanceof CliExit) {
    process.stderr.write(`meshctl: ${err.message}\n`);
    process.exitCode = err.exitCode;
  } else if (isMeshError(err, 'VALIDATION')) {
    process.stderr.write(`meshctl: ${err.message}\n`);
    process.exitCode = EXIT.usage;
  } else {
    process.stderr.write(
      `meshctl: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = EXIT.failed;
  }
}
