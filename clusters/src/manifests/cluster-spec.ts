import type { ClusterSpec, Result } from '../../../common/index.js';
import type { ManifestFile } from './documents.js';
import { splitDocuments } from './documents.js';
import { Field } from './field.js';
import { parseIPv4Cidr } from './ipv4.js';
import { IssueList, ObjectIssues } from './issues.js';
import { checkDnsLabel } from './names.js';

export const CLUSTER_FILE = 'cluster.yaml';

const KNOWN_FIELDS = ['name', 'id', 'nodes', 'podCIDR'];

export interface ClusterSpecOptions {
  /** replaces the node list with `<cluster>-1..N` */
  nodesPerCluster?: number | undefined;
}

export function defaultPodCidr(id: number): string {
  return `10.${id}.0.0/16`;
}

/** The cluster a folder without cluster.yaml stands for. */
export function defaultClusterSpec(opts: ClusterSpecOptions = {}): ClusterSpec {
  const name = 'default';
  return {
    name,
    id: 1,
    nodes: generatedNodes(name, opts.nodesPerCluster ?? 1),
    podCIDR: defaultPodCidr(1),
  };
}

function generatedNodes(cluster: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${cluster}-${i + 1}`);
}

/** Parses and validates a cluster.yaml; every problem is reported with its field. */
export function parseClusterSpec(
  file: ManifestFile,
  opts: ClusterSpecOptions = {},
): Result<ClusterSpec> {
  const issues = new IssueList();
  const documents = splitDocuments(file, issues);
  if (documents.length > 1) {
    issues.add({
      file: file.path,
      document: documents[1]?.index ?? 1,
      message: `${CLUSTER_FILE} must hold exactly one document`,
      severity: 'error',
    });
  }
  const document = documents[0];
  const objectIssues = new ObjectIssues(issues, {
    file: file.path,
    document: document?.index ?? 0,
  });
  const root = new Field(objectIssues, document?.value, '');
  if (document === undefined && !issues.hasErrors) {
    objectIssues.error('', `${CLUSTER_FILE} is empty; it needs name, id and nodes`);
  }
  const spec = document === undefined ? undefined : readSpec(root, opts);
  if (issues.hasErrors || spec === undefined) return { ok: false, errors: issues.errors };
  return { ok: true, value: spec, warnings: issues.warnings };
}

function readSpec(root: Field, opts: ClusterSpecOptions): ClusterSpec | undefined {
  const record = root.record();
  if (record === undefined) return undefined;
  for (const key of Object.keys(record)) {
    if (!KNOWN_FIELDS.includes(key)) {
      root.child(key).error(`unknown field; ${CLUSTER_FILE} has ${KNOWN_FIELDS.join(', ')}`);
    }
  }
  const name = root.child('name').name(checkDnsLabel, { required: true });
  if (name !== undefined) root.issues.object = `Cluster/${name}`;
  const id = root.child('id').integer({ min: 1, max: 255 }, { required: true });
  const nodes = readNodes(root.child('nodes'), opts.nodesPerCluster === undefined);
  const cidrField = root.child('podCIDR');
  let podCIDR = id === undefined ? undefined : defaultPodCidr(id);
  if (cidrField.present) {
    const text = cidrField.string();
    const parsed = text === undefined ? undefined : parseIPv4Cidr(text);
    if (parsed !== undefined && 'reason' in parsed) cidrField.error(parsed.reason);
    else if (parsed !== undefined && parsed.cidr.prefix > 30) {
      cidrField.error(`"${text}" is too small for pods; use a prefix of /30 or shorter`);
    } else podCIDR = text;
  }
  if (name === undefined || id === undefined || podCIDR === undefined) return undefined;
  if (opts.nodesPerCluster !== undefined) {
    const generated = generatedNodes(name, opts.nodesPerCluster);
    const tooLong = generated.find((node) => checkDnsLabel(node) !== undefined);
    if (tooLong !== undefined) {
      root.child('name').error(`generated node name "${tooLong}" is not a valid DNS label`);
      return undefined;
    }
    return { name, id, nodes: generated, podCIDR };
  }
  return nodes === undefined ? undefined : { name, id, nodes, podCIDR };
}

function readNodes(field: Field, required: boolean): string[] | undefined {
  const items = field.items({ required });
  if (field.present && Array.isArray(field.value) && items.length === 0) {
    field.error('must list at least one node');
  }
  const nodes: string[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const node = item.name(checkDnsLabel, { required: true });
    if (node === undefined) continue;
    if (seen.has(node)) item.error(`duplicate node "${node}"`);
    seen.add(node);
    nodes.push(node);
  }
  return nodes.length === items.length && nodes.length > 0 ? nodes : undefined;
}
