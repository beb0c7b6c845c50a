export * from './backend.js';
export { createBackend, registerBackend, backendKinds, type BackendFactory } from './registry.js';
export { EmulatedBackend, type EmulatedBackendOptions, DEFAULT_STANDBY_SHAPE } from './emulated/backend.js';
export { EmulatedEnclave, type StartupSteps } from './emulated/enclave.js';
export type { StandbyStats } from './emulated/standby-pool.js';
export type { WorkerShape } from './emulated/worker-shape.js';
export { type RestartPolicy, DEFAULT_RESTART_POLICY } from './emulated/restart-policy.js';
export { copyValue, isProblem, MAX_VALUE_DEPTH } from './values.cjs';
