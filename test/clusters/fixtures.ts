import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ClusterSpec, MeshObject, PodObject, ValidationIssue } from '../../common/index.js';

/** Writes files (relative path → text) under root. */
export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

export function clusterYaml(name: string, id: number, nodes: string[], extra = ''): string {
  return `name: ${name}\nid: ${id}\nnodes: [${nodes.join(', ')}]\n${extra}`;
}

export function namespaceYaml(name: string): string {
  return `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
}

/** A pod; `spec`/`status` are YAML lines indented under them (2 spaces). */
export function podYaml(
  namespace: string,
  name: string,
  opts: { labels?: Record<string, string>; spec?: string; status?: string } = {},
): string {
  const labels = Object.entries(opts.labels ?? { app: name })
    .map(([k, v]) => `    ${k}: ${v}\n`)
    .join('');
  return (
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\n  labels:\n${labels}` +
    `spec:\n${opts.spec ?? '  containers: [{ name: app }]\n'}` +
    (opts.status === undefined ? '' : `status:\n${opts.status}`)
  );
}

export function spec(name: string, id: number, nodes: string[], podCIDR?: string): ClusterSpec {
  return { name, id, nodes, podCIDR: podCIDR ?? `10.${id}.0.0/16` };
}

export function pods(objects: readonly MeshObject[]): PodObject[] {
  return objects.filter((o): o is PodObject => o.kind === 'Pod');
}

/** A compact view of where each pod landed: `ns/name node ip,ip`. */
export function placement(objects: readonly MeshObject[]): string[] {
  return pods(objects).map((p) => `${p.namespace}/${p.name} ${p.node} ${p.ips.join(',')}`);
}

/** The location part of an issue, for asserting what an error names. */
export function located(issue: ValidationIssue): Record<string, string | number | undefined> {
  const { file, document, object, field } = issue;
  return { file, document, object, field };
}
