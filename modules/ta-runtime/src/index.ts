export { TARuntime, type RuntimeOptions, type RuntimeEvents } from './runtime.js';
export { startTARuntimeModule, EVENTS_OUTPUT, type TARuntimeModule, type TARuntimeModuleOptions } from './ta-runtime-module.js';
export { handleRuntimeMethod, RUNTIME_METHOD_NAMES } from './methods.js';
export { readSource, MAX_BUNDLE_BYTES } from './sources.js';
export { DedupeCache } from './dedupe.js';
export { readConfig, type RuntimeConfig } from './config.js';
export { setupTrust, createBackend, type TrustSetup } from './trust-setup.js';
export type { TAReport, TAStatus } from './loaded-ta.js';
