/**
 * The emulated backend's internals, for this package's white-box tests (hostile workers,
 * bounds, ring layout). Not an API: nothing outside packages/enclave imports it.
 */
export { Instance, type DeathReason } from './threads/instance.js';
export type { StandbyWorker } from './threads/standby-pool.js';
export { shapeOf } from './threads/worker-shape.js';
export { TrustBridge, decodeNonce } from './trust-bridge.js';
export { SVC_MAX_IN_FLIGHT, SVC_MAX_BYTES_IN_FLIGHT } from './wire/service-quota.cjs';
export { HOST_LOG_LIMITS, WORKER_LOG_LIMITS } from './wire/log-limiter.cjs';
export { binaryLimitBytes } from './wire/binary-memory.cjs';
export { capWasmMemory } from './wire/wasm-memory.cjs';
export { probeOsLimits } from './process/os-limits.js';
export { TaProcess } from './process/ta-process.js';
