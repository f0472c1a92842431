// meshctl: the command line of meshplane (composition root of the CLI).
import { CommanderError } from 'commander';
import { isMeshError } from '../common/index.js';
import { CliExit, EXIT } from './exit-codes.js';
import { buildMeshctl } from './program.js';
import { buildCliTelemetry } from './telemetry.js';

// Spans of the commands that change the mesh or wait for it (apply, delete,
// wait, clusters join/remove), exported when OTEL_EXPORTER_OTLP_ENDPOINT is set.
const telemetry = await buildCliTelemetry(process.env);
const program = buildMeshctl(telemetry);

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
} finally {
  await telemetry.shutdown();
}
