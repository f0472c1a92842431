import type { MeshObject, NamespaceObject, ServiceAccountObject } from '../../../common/index.js';
import type { Field } from './field.js';
import type { Metadata } from './metadata.js';
import { readMetadata } from './metadata.js';
import { checkDns1035Label, checkDnsLabel, checkDnsSubdomain } from './names.js';
import type { PodContext, PodDraft } from './pod.js';
import { convertPod } from './pod.js';
import { convertPolicy } from './policy.js';
import { convertService, convertServiceExport } from './service.js';

type NameCheck = (value: string) => string | undefined;

interface KindRule {
  apiVersions: readonly string[];
  scope: 'namespaced' | 'cluster';
  checkName: NameCheck;
}

const KINDS: Record<string, KindRule> = {
  Namespace: { apiVersions: ['v1'], scope: 'cluster', checkName: checkDnsLabel },
  Pod: { apiVersions: ['v1'], scope: 'namespaced', checkName: checkDnsSubdomain },
  ServiceAccount: { apiVersions: ['v1'], scope: 'namespaced', checkName: checkDnsSubdomain },
  Service: { apiVersions: ['v1'], scope: 'namespaced', checkName: checkDns1035Label },
  ServiceExport: {
    apiVersions: ['multicluster.x-k8s.io/v1alpha1', 'multicluster.x-k8s.io/v1beta1'],
    scope: 'namespaced',
    // It must name a Service.
    checkName: checkDns1035Label,
  },
  NetworkPolicy: {
    apiVersions: ['networking.k8s.io/v1'],
    scope: 'namespaced',
    checkName: checkDnsSubdomain,
  },
  CiliumNetworkPolicy: {
    apiVersions: ['cilium.io/v2'],
    scope: 'namespaced',
    checkName: checkDnsSubdomain,
  },
  CiliumClusterwideNetworkPolicy: {
    apiVersions: ['cilium.io/v2'],
    scope: 'cluster',
    checkName: checkDnsSubdomain,
  },
};

export interface Converted {
  object: MeshObject;
  pod?: PodDraft;
  /** path of the object in its document: '' or `items[i]` of a List */
  path: string;
  /** Kind/namespace/name for messages */
  description: string;
}

/**
 * Converts one Kubernetes object (a document, or an item of a `List`) into a
 * mesh object, reporting every problem found. Returns the converted objects;
 * a `List` yields its items.
 */
export function convertDocument(root: Field, ctx: PodContext): Converted[] {
  if (root.record({ required: true }) === undefined) return [];
  const kindField = root.child('kind');
  const kind = kindField.string({ required: true, nonEmpty: true });
  const apiVersionField = root.child('apiVersion');
  const apiVersion = apiVersionField.string({ required: true, nonEmpty: true });
  if (kind === undefined) return [];
  root.issues.object = kind;
  if (kind === 'List' || kind.endsWith('List')) return convertList(root, kind, apiVersion, ctx);
  const rule = KINDS[kind];
  if (rule === undefined) {
    kindField.error(`unsupported kind "${kind}"; supported: ${Object.keys(KINDS).join(', ')}`);
    return [];
  }
  const { meta, usable } = readMetadata(root, kind, rule.scope, rule.checkName);
  if (apiVersion !== undefined && !rule.apiVersions.includes(apiVersion)) {
    apiVersionField.error(
      `apiVersion "${apiVersion}" is not supported for kind ${kind} (use ${rule.apiVersions.join(' or ')})`,
    );
  }
  // Converted even when unusable, to report the problems of the rest of the object.
  const converted = convertKnown(root, kind, meta, ctx);
  if (converted === undefined || !usable) return [];
  return [{ ...converted, path: root.path, description: root.issues.object ?? kind }];
}

function convertList(
  root: Field,
  kind: string,
  apiVersion: string | undefined,
  ctx: PodContext,
): Converted[] {
  if (kind !== 'List' || apiVersion !== 'v1') {
    root.child('kind').error(`unsupported kind "${kind}"; only v1 List holds objects`);
    return [];
  }
  return root
    .child('items')
    .items({ required: true })
    .flatMap((item) => {
      item.issues.object = undefined;
      return convertDocument(item, ctx);
    });
}

function convertKnown(
  root: Field,
  kind: string,
  meta: Metadata,
  ctx: PodContext,
): { object: MeshObject; pod?: PodDraft } | undefined {
  const cluster = ctx.cluster.name;
  switch (kind) {
    case 'Namespace':
      return { object: namespaceObject(meta, cluster) };
    case 'ServiceAccount':
      return { object: serviceAccountObject(meta, cluster) };
    case 'Pod': {
      const pod = convertPod(root, meta, ctx);
      return { object: pod.pod, pod };
    }
    case 'Service':
      return { object: convertService(root, meta, cluster) };
    case 'ServiceExport':
      return { object: convertServiceExport(meta, cluster) };
    case 'NetworkPolicy':
    case 'CiliumNetworkPolicy':
    case 'CiliumClusterwideNetworkPolicy': {
      const policy = convertPolicy(root, meta, kind, cluster);
      return policy === undefined ? undefined : { object: policy };
    }
    default:
      return undefined;
  }
}

function namespaceObject(meta: Metadata, cluster: string): NamespaceObject {
  const object: NamespaceObject = {
    kind: 'Namespace',
    cluster,
    namespace: '',
    name: meta.name,
    // The API server sets this label on every namespace; selectors rely on it.
    labels: { ...meta.labels, 'kubernetes.io/metadata.name': meta.name },
  };
  if (meta.creationTimestamp !== undefined) object.creationTimestamp = meta.creationTimestamp;
  return object;
}

function serviceAccountObject(meta: Metadata, cluster: string): ServiceAccountObject {
  const object: ServiceAccountObject = {
    kind: 'ServiceAccount',
    cluster,
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
  };
  if (meta.creationTimestamp !== undefined) object.creationTimestamp = meta.creationTimestamp;
  return object;
}
