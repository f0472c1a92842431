import type { PodObject, ServiceExportObject, ServiceObject } from '../../common/index.js';

/** One condition on a ServiceExport, as the Multi-Cluster Services API (KEP-1645) shapes them. */
export interface ExportCondition {
  type: 'Valid' | 'Conflict';
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface ExportStatus {
  cluster: string;
  namespace: string;
  name: string;
  /** what decided age: the manifest's creationTimestamp, else when the control plane first recorded it */
  createdAt: string;
  conditions: ExportCondition[];
}

export interface ImportPort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

/** EndpointSlice-shaped endpoints of one source cluster (ready endpoints only). */
export interface ImportEndpoints {
  labels: {
    'multicluster.kubernetes.io/service-name': string;
    'multicluster.kubernetes.io/source-cluster': string;
  };
  cluster: string;
  /** ports by import port name ('' for an unnamed port), resolved to the pods' target ports */
  ports: { name: string; port: number; protocol: 'TCP' | 'UDP' | 'SCTP' }[];
  addresses: string[];
}

export interface ServiceImportView {
  namespace: string;
  name: string;
  type: 'ClusterSetIP' | 'Headless';
  sessionAffinity: 'None' | 'ClientIP';
  ports: ImportPort[];
  /** clusterset IP ('' until allocated, and always for Headless) */
  ips: string[];
  /** exporting clusters, sorted */
  clusters: string[];
  endpoints: ImportEndpoints[];
  /** member clusters that have the namespace, so get the import */
  importedInto: string[];
}

/** One member cluster's objects, as the derivation needs them. */
export interface ClusterObjects {
  name: string;
  /** false: the cluster's source stopped reporting beyond its lease; its endpoints leave every import */
  live: boolean;
  namespaces: ReadonlySet<string>;
  services: readonly ServiceObject[];
  exports: readonly (ServiceExportObject & { recordedAt?: string })[];
  pods: readonly PodObject[];
  /**
   * `services` and `exports` by namespace/name, when the caller keeps them
   * across derivations (default: built per call). A derivation of a few
   * imports then looks them up instead of scanning every export.
   */
  byName?: ClusterObjectsByName | undefined;
}

export interface ClusterObjectsByName {
  services: ReadonlyMap<string, ServiceObject>;
  exports: ReadonlyMap<string, ServiceExportObject & { recordedAt?: string }>;
}

export interface DerivedServices {
  imports: ServiceImportView[];
  exports: ExportStatus[];
}
