import type { ServiceExportObject, ServiceObject, ServicePortSpec } from '../../../common/index.js';
import type { Field } from './field.js';
import type { Metadata } from './metadata.js';
import { readLabels } from './metadata.js';
import { checkDnsLabel, checkPortName } from './names.js';
import { PORT_RANGE, PROTOCOLS } from './pod.js';

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'] as const;

export function convertService(root: Field, meta: Metadata, cluster: string): ServiceObject {
  const spec = root.child('spec');
  spec.record({ required: true });
  const type = spec.child('type').oneOf(SERVICE_TYPES) ?? 'ClusterIP';
  const clusterIP = spec.child('clusterIP');
  const headless = clusterIP.string() === 'None';
  if (clusterIP.present && !headless && clusterIP.value !== '') {
    // Clusterset VIPs are not load-balanced in wave 1 (DESIGN.md), so an
    // explicit service IP has no effect; say so rather than drop it silently.
    clusterIP.warn('ignored: meshplane does not load-balance service IPs yet');
  }
  if (headless && type !== 'ClusterIP') clusterIP.error(`"None" is only valid for type ClusterIP`);
  const selectorField = spec.child('selector');
  const selector = readLabels(selectorField);
  const portsField = spec.child('ports');
  const ports = readServicePorts(portsField);
  const noPorts =
    !portsField.present || (Array.isArray(portsField.value) && portsField.value.length === 0);
  if (noPorts && !headless && type !== 'ExternalName' && spec.present) {
    portsField.error('is required (at least one port) unless the Service is headless');
  }
  const service: ServiceObject = {
    kind: 'Service',
    cluster,
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
    type,
    headless,
    // As in Kubernetes, an empty selector selects nothing: endpoints are managed elsewhere.
    selector: Object.keys(selector).length > 0 ? selector : null,
    ports,
    sessionAffinity: spec.child('sessionAffinity').oneOf(['None', 'ClientIP']) ?? 'None',
  };
  if (meta.creationTimestamp !== undefined) service.creationTimestamp = meta.creationTimestamp;
  return service;
}

function readServicePorts(field: Field): ServicePortSpec[] {
  const items = field.items();
  const ports: ServicePortSpec[] = [];
  const names = new Set<string>();
  for (const item of items) {
    item.record({ required: true });
    const nameField = item.child('name');
    // Kubernetes requires names only when there is more than one port.
    const name = nameField.name(checkDnsLabel, { required: items.length > 1 }) ?? '';
    if (name !== '' && names.has(name)) nameField.error(`duplicate port name "${name}"`);
    names.add(name);
    const port = item.child('port').integer(PORT_RANGE, { required: true });
    const protocol = item.child('protocol').oneOf(PROTOCOLS) ?? 'TCP';
    const targetPort = readTargetPort(item.child('targetPort'));
    if (port !== undefined && targetPort !== null) {
      ports.push({ name, port, protocol, targetPort: targetPort ?? port });
    }
  }
  return ports;
}

/** A port number, a container port name, or undefined (defaults to the port); null when invalid. */
function readTargetPort(field: Field): number | string | undefined | null {
  if (!field.present) return undefined;
  if (typeof field.value === 'number') return field.integer(PORT_RANGE) ?? null;
  if (typeof field.value === 'string') return field.name(checkPortName) ?? null;
  field.error('must be a port number or a container port name');
  return null;
}

export function convertServiceExport(meta: Metadata, cluster: string): ServiceExportObject {
  const object: ServiceExportObject = {
    kind: 'ServiceExport',
    cluster,
    namespace: meta.namespace,
    name: meta.name,
    labels: meta.labels,
  };
  if (meta.creationTimestamp !== undefined) object.creationTimestamp = meta.creationTimestamp;
  return object;
}
