/** The test kit: the backend conformance suite, test bundles, fixture TAs and in-memory trust services. */
export { runConformance } from './conformance.js';
export { makeTestBundle, testManifest, type ManifestOverrides } from './bundles.js';
export * from './fixtures.js';
export { InMemoryTrustServicesForTests } from './in-memory-trust.js';
