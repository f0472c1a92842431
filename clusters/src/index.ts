// The public surface of clusters/: manifest folders (pure loading and
// validation) and the manifest-backed cluster source.
export * from './manifests/index.js';
export * from './source/index.js';
