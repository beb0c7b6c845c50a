/** @enclave-edge/enclave — the EnclaveBackend contract, the backend registry and the emulated backend. */
export * from './contract.js';
export { invokeBatchOf, invokeEach } from './batch.js';
export { inspectRefusal, type InspectMode } from './inspect.js';
export { createBackend, registerBackend, backendKinds, probeBackend, type BackendFactory, type BackendProbe } from './registry.js';
export { EmulatedBackend, type EmulatedBackendOptions, DEFAULT_STANDBY_SHAPE } from './emulated/backend.js';
export { EmulatedEnclave, type StartupSteps } from './emulated/threads/enclave.js';
export type { StandbyStats } from './emulated/threads/standby-pool.js';
export type { WorkerShape } from './emulated/threads/worker-shape.js';
export { type RestartPolicy, DEFAULT_RESTART_POLICY } from './emulated/restart-policy.js';
export { copyValue, isProblem, MAX_VALUE_DEPTH } from './emulated/wire/values.cjs';
