import { parseArgs } from 'node:util';
import { MeshError, type Result, type ValidationIssue } from '../common/index.js';

export interface AgentArgs {
  server: string;
  cluster: string;
  node: string;
  datapath: 'emulated' | 'ebpf';
  verifyIntervalMs: number;
  capacityIpcache: number | undefined;
  capacityEndpoints: number | undefined;
  capacityPolicyEntries: number | undefined;
  /** eBPF: where this node's maps are pinned (default /sys/fs/bpf/meshplane/<run-id>/<node>) */
  pinDir: string | undefined;
  /** eBPF: the run id in the default pin dir */
  runId: string;
  /** eBPF: the network namespace (name under /run/netns, or a path) holding the node's interfaces; the agent's own by default */
  netns: string | undefined;
  /** mTLS files (mesh CA, this node's certificate and key), or explicit plain text */
  tls: { ca: string; cert: string; key: string } | 'insecure';
  /** HOST:PORT of this agent's Prometheus endpoint (port 0: any); none when absent */
  metricsListen: string | undefined;
  /** OTLP/HTTP collector base URL for metrics and traces */
  otlpUrl: string | undefined;
}

export const AGENT_USAGE = `usage: nodeagent --server HOST:PORT --cluster C --node N
                 (--tls-ca FILE --tls-cert FILE --tls-key FILE | --insecure)
                 [--datapath emulated|ebpf] [--verify-interval 60s] [--capacity-ipcache N]
                 [--capacity-endpoints N] [--capacity-policy-entries N]
                 [--metrics-listen HOST:PORT] [--otlp URL]
                 [--run-id ID] [--pin-dir DIR] [--netns NAME|PATH]   (eBPF datapath)`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "60s", "2m", "1h"; "0" disables. Throws a VALIDATION MeshError otherwise. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (m === null)
    throw new MeshError('VALIDATION', `"${text}" is not a duration (e.g. 500ms, 60s, 2m)`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

function issue(field: string, message: string): ValidationIssue {
  return { field, message, severity: 'error' };
}

/** Parses the command line, collecting every problem. */
export function parseAgentArgs(argv: string[]): Result<AgentArgs> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        server: { type: 'string' },
        cluster: { type: 'string' },
        node: { type: 'string' },
        datapath: { type: 'string', default: 'emulated' },
        'verify-interval': { type: 'string', default: '60s' },
        'capacity-ipcache': { type: 'string' },
        'capacity-endpoints': { type: 'string' },
        'capacity-policy-entries': { type: 'string' },
        'run-id': { type: 'string', default: 'default' },
        'pin-dir': { type: 'string' },
        netns: { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        insecure: { type: 'boolean', default: false },
        'metrics-listen': { type: 'string' },
        otlp: { type: 'string' },
      },
    }));
  } catch (err) {
    return { ok: false, errors: [issue('argv', err instanceof Error ? err.message : String(err))] };
  }
  const errors: ValidationIssue[] = [];
  const required = (name: 'server' | 'cluster' | 'node'): string => {
    const v = values[name];
    if (v === undefined || v === '') errors.push(issue(`--${name}`, 'is required'));
    return v ?? '';
  };
  const server = required('server');
  const cluster = required('cluster');
  const node = required('node');
  if (server !== '' && !/^.+:\d+$/.test(server))
    errors.push(issue('--server', `"${server}" is not HOST:PORT`));
  const datapath = values.datapath;
  if (datapath !== 'emulated' && datapath !== 'ebpf') {
    errors.push(issue('--datapath', `"${datapath}" is not emulated or ebpf`));
  }
  let verifyIntervalMs = 60_000;
  try {
    verifyIntervalMs = parseDuration(values['verify-interval']);
  } catch (err) {
    errors.push(issue('--verify-interval', (err as Error).message));
  }
  const count = (
    name: 'capacity-ipcache' | 'capacity-endpoints' | 'capacity-policy-entries',
  ): number | undefined => {
    const v = values[name];
    if (v === undefined) return undefined;
    const n = Number(v);
    // Capacities travel as uint32 in DatapathCapacity.
    if (!/^\d+$/.test(v) || n < 1 || n > 0xffffffff) {
      errors.push(issue(`--${name}`, `"${v}" is not a positive integer`));
      return undefined;
    }
    return n;
  };
  const capacityIpcache = count('capacity-ipcache');
  const capacityEndpoints = count('capacity-endpoints');
  const capacityPolicyEntries = count('capacity-policy-entries');
  const runId = values['run-id'];
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(runId))
    errors.push(issue('--run-id', `"${runId}" is not 1-64 letters, digits, _ or -`));
  const pinDir = values['pin-dir'];
  if (pinDir !== undefined && !pinDir.startsWith('/sys/fs/bpf/'))
    errors.push(issue('--pin-dir', `"${pinDir}" is not under /sys/fs/bpf/`));
  const tls = tlsOf(values, errors);
  const metricsListen = values['metrics-listen'];
  if (metricsListen !== undefined && !/^.+:\d+$/.test(metricsListen))
    errors.push(issue('--metrics-listen', `"${metricsListen}" is not HOST:PORT`));
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    warnings: [],
    value: {
      server,
      cluster,
      node,
      datapath: datapath as 'emulated' | 'ebpf',
      verifyIntervalMs,
      capacityIpcache,
      capacityEndpoints,
      capacityPolicyEntries,
      pinDir,
      runId,
      netns: values.netns,
      tls,
      metricsListen,
      otlpUrl: values.otlp,
    },
  };
}

/** mTLS unless --insecure says otherwise; never both, never half of the files. */
function tlsOf(
  values: { 'tls-ca'?: string; 'tls-cert'?: string; 'tls-key'?: string; insecure?: boolean },
  errors: ValidationIssue[],
): AgentArgs['tls'] {
  const files = { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'] };
  const given = Object.values(files).some((v) => v !== undefined);
  if (values.insecure) {
    if (given)
      errors.push(issue('--insecure', 'cannot be combined with --tls-ca/--tls-cert/--tls-key'));
    return 'insecure';
  }
  const { ca, cert, key } = files;
  if (ca && cert && key) return { ca, cert, key };
  for (const [name, v] of Object.entries(files)) {
    if (!v)
      errors.push(
        issue(
          `--tls-${name}`,
          given
            ? 'is required with the other --tls-* files'
            : 'is required (or --insecure for plain text)',
        ),
      );
  }
  return 'insecure';
}
