// Composition root of the node agent binary:
//   node --import tsx nodeagent/main.ts --server HOST:PORT --cluster C --node N [...]
// Logs JSON lines to stderr; prints {"event":"ready",...} on stdout once the
// first revision is applied (with "metrics": URL when --metrics-listen is given:
// the agent's Prometheus endpoint; OTel providers are built here and passed down,
// nothing is registered globally). SIGTERM/SIGINT close the stream and exit 0
// without touching the datapath (stopping is not removing).
import { formatIssue } from '../common/index.js';
import { buildTelemetryProviders, PrometheusEndpoint } from '../common/telemetry/index.js';
import { clientTransport, readTlsMaterial, type ClientTransport } from '../common/tls/index.js';
import { AGENT_USAGE, parseAgentArgs } from './args.js';
import { NodeAgent, type LogFields, type Logger } from './client/index.js';
import {
  EbpfDatapath,
  EndpointAttacher,
  EmulatedDatapath,
  defaultPinDir,
  type Datapath,
  type EmulatedDatapathOptions,
} from './datapath/index.js';
import { FlowReporter, registerDatapathMetrics } from './flows/index.js';
import { registerAgentMetrics, registerAgentTracing } from './telemetry/index.js';

function jsonLogger(base: LogFields): Logger {
  const write =
    (level: string) =>
    (msg: string, fields: LogFields = {}): void => {
      process.stderr.write(
        `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...base, ...fields })}\n`,
      );
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseAgentArgs(argv);
  if (!parsed.ok) {
    for (const e of parsed.errors) process.stderr.write(`nodeagent: ${formatIssue(e)}\n`);
    process.stderr.write(`${AGENT_USAGE}\n`);
    return 2;
  }
  const args = parsed.value;
  const logger = jsonLogger({ component: 'nodeagent', cluster: args.cluster, node: args.node });

  const capacity: EmulatedDatapathOptions = {};
  if (args.capacityIpcache !== undefined) capacity.ipcacheEntries = args.capacityIpcache;
  if (args.capacityEndpoints !== undefined) capacity.endpoints = args.capacityEndpoints;
  if (args.capacityPolicyEntries !== undefined)
    capacity.policyEntriesPerEndpoint = args.capacityPolicyEntries;
  if (args.tls === 'insecure') {
    logger.warn('plain text to the control plane (--insecure): no server or node identity');
  }
  // Read before the datapath opens: a missing certificate is a usage error, exit 2.
  let transport: ClientTransport;
  try {
    transport = clientTransport(
      args.tls === 'insecure' ? 'insecure' : await readTlsMaterial(args.tls),
    );
  } catch (err) {
    process.stderr.write(`nodeagent: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const prometheus = args.metricsListen ? new PrometheusEndpoint() : undefined;
  let metricsUrl: string | undefined;
  try {
    if (prometheus && args.metricsListen) metricsUrl = await prometheus.listen(args.metricsListen);
  } catch (err) {
    process.stderr.write(`nodeagent: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const providers = buildTelemetryProviders({
    serviceName: 'meshplane-nodeagent',
    attributes: { 'meshplane.cluster': args.cluster, 'meshplane.node': args.node },
    metricReaders: prometheus ? [prometheus.reader] : [],
    ...(args.otlpUrl ? { otlpUrl: args.otlpUrl } : {}),
  });
  // Datapath and agent instruments share this meter (one /metrics per agent process).
  const meter = providers.meterProvider.getMeter('meshplane');
  let datapath: Datapath;
  if (args.datapath === 'ebpf') {
    const pinDir = args.pinDir ?? defaultPinDir(args.runId, args.node);
    try {
      // Adopts pinned maps (they kept enforcing while the agent was down); the
      // first revision then reconciles them to the snapshot.
      datapath = await EbpfDatapath.open({ pinDir, ...capacity });
    } catch (err) {
      process.stderr.write(
        `nodeagent: cannot open the eBPF datapath in ${pinDir}: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      return 1;
    }
  } else {
    datapath = new EmulatedDatapath(capacity);
  }

  const agent = new NodeAgent({
    server: args.server,
    node: { id: args.node, cluster: args.cluster },
    credentials: transport.credentials,
    channelOptions: transport.options,
    datapath,
    verifyIntervalMs: args.verifyIntervalMs,
    logger,
  });
  const metrics = registerAgentMetrics(meter, agent, { cluster: args.cluster, node: args.node });
  // Spans only when they are exported (--otlp): made and dropped they are pure cost.
  const tracer = providers.exportingTracer('meshplane');
  const tracing = tracer
    ? registerAgentTracing(tracer, agent, { cluster: args.cluster, node: args.node })
    : undefined;
  const unsubscribe = agent.on('revisionApplied', () => {
    unsubscribe();
    process.stdout.write(
      `${JSON.stringify({ event: 'ready', node: args.node, cluster: args.cluster, ...(metricsUrl ? { metrics: metricsUrl } : {}) })}\n`,
    );
  });

  const stopped = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('starting', {
    server: args.server,
    datapath: datapath.capacity,
    ...(metricsUrl ? { metrics: metricsUrl } : {}),
  });
  agent.start();
  // eBPF: attach the programs on each local endpoint's interface once it appears.
  const attacher =
    datapath instanceof EbpfDatapath
      ? new EndpointAttacher(datapath, {
          ...(args.netns !== undefined ? { netns: args.netns } : {}),
          attached: (endpoint, itf) =>
            logger.info('programs attached', {
              endpoint,
              interface: itf.name,
              ifindex: itf.ifindex,
            }),
          failed: (endpoint, err) =>
            logger.warn('attaching programs failed', { endpoint, error: String(err) }),
        })
      : undefined;
  attacher?.start();
  // eBPF: flow events to the control plane (meshctl observe), kernel counters on /metrics.
  const reporter =
    datapath instanceof EbpfDatapath
      ? new FlowReporter({
          source: datapath,
          server: args.server,
          credentials: transport.credentials,
          channelOptions: transport.options,
          node: { cluster: args.cluster, id: args.node },
          logger,
        })
      : undefined;
  reporter?.start();
  const datapathMetrics =
    datapath instanceof EbpfDatapath
      ? registerDatapathMetrics(meter, datapath, reporter, {
          cluster: args.cluster,
          node: args.node,
        })
      : undefined;
  const signal = await stopped;
  logger.info('stopping; the datapath keeps its state', { signal });
  await agent.stop();
  await reporter?.stop();
  await attacher?.stop(); // filters stay attached: the node keeps enforcing
  await datapath.close();
  metrics.close();
  datapathMetrics?.close();
  tracing?.close();
  await providers.shutdown();
  await prometheus?.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything is closed by now; if some handle still holds the loop open, do not hang a shutdown on it.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', msg: 'nodeagent failed', error: String(err) })}\n`,
    );
    process.exitCode = 1;
  },
);
