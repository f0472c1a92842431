/**
 * Manifest folders (DESIGN.md "Public surface"): loading is I/O at the edge
 * (load-folder, read-files); parseClusterDocuments is pure. Rules where
 * Kubernetes leaves a choice:
 * - An object without metadata.namespace is in `default`, which exists in
 *   every cluster (its Namespace object is added when used). Any other
 *   namespace needs a Namespace document.
 * - A ServiceAccount a pod names but nobody declares is assumed to exist
 *   (warning); `default` silently.
 * - hostNetwork pods have no pod IP (they share the node's address and have
 *   the host identity); addresses written for them are ignored with a warning.
 * - Pod CIDRs of a mesh must not overlap; an explicit pod IP outside its
 *   cluster's CIDR is accepted with a warning.
 * - Cilium policies: PolicyObject.spec is `spec` (a map) or `specs` (a list),
 *   as written; both at once is refused.
 * - `--nodes N`: a nodeName not in the new list is placed round-robin (warning).
 */
export type { ClusterSpecOptions } from './cluster-spec.js';
export {
  CLUSTER_FILE,
  defaultClusterSpec,
  defaultPodCidr,
  parseClusterSpec,
} from './cluster-spec.js';
export type { BlockDocument } from './block-yaml.js';
export { parseBlockYaml } from './block-yaml.js';
export type { ManifestFile } from './documents.js';
export type { ClusterLoadOptions, LoadedCluster, LoadedMesh, LoadOptions } from './load-folder.js';
export {
  findClusterFolders,
  loadClusterFolder,
  loadMeshFolder,
  readClusterSpec,
} from './load-folder.js';
export type { FolderLoad, FolderLoadOptions } from './folder-loader.js';
export type { AssemblyDelta } from './assembled-folder.js';
export { ClusterFolderLoader } from './folder-loader.js';
export type { ObjectOrigin } from './origin.js';
export type { FileObject, ParsedFile } from './parse-file.js';
export { parseManifestFile } from './parse-file.js';
export type { ParseOptions } from './parse-cluster.js';
export { parseClusterDocuments } from './parse-cluster.js';
export { isIgnoredName, isManifestName, readManifestFiles } from './read-files.js';
export type { PreviousPlacement, PreviousPlacements } from './placement.js';
export { podKey, podPlacements } from './placement.js';
