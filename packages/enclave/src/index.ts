export * from './backend.js';
export { createBackend, registerBackend, backendKinds, type BackendFactory } from './registry.js';
export { EmulatedBackend, type EmulatedBackendOptions } from './emulated/backend.js';
export { EmulatedEnclave } from './emulated/enclave.js';
export { type RestartPolicy, DEFAULT_RESTART_POLICY } from './emulated/restart-policy.js';
export { copyValue, isProblem, MAX_VALUE_DEPTH } from './values.cjs';
