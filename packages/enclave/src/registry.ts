/** Backends by kind, so callers pick one by configuration and adapters plug in without touching them. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { EnclaveBackend } from './contract.js';
import { EmulatedBackend, type EmulatedBackendOptions } from './emulated/backend.js';
import { probeOsLimits } from './emulated/process/os-limits.js';

/** Whether a backend kind can run here, and if not, why. */
export interface BackendProbe {
  kind: string;
  available: boolean;
  reason?: string;
  /** What the backend found (e.g. the emulated backend's OS bounds). */
  details?: Record<string, unknown>;
}

export type BackendFactory = (options?: Record<string, unknown>) => EnclaveBackend;

const notYet = (kind: string, what: string): BackendFactory => () => {
  throw new EnclaveEdgeError('NOT_SUPPORTED', `the "${kind}" enclave backend is not available in this build: it needs ${what} behind the EnclaveBackend contract (see docs/enclave-backends.md); use "emulated"`);
};

const probes = new Map<string, () => BackendProbe>([
  ['emulated', () => ({ kind: 'emulated', available: true, details: { isolation: 'process', os: probeOsLimits() } })],
  ['sgx', () => ({ kind: 'sgx', available: false, reason: 'no SGX adapter in this build' })],
  ['optee', () => ({ kind: 'optee', available: false, reason: 'no OP-TEE adapter in this build' })],
]);

/** Can `kind` run here? Unknown kinds answer unavailable, naming the known ones. */
export function probeBackend(kind: string): BackendProbe {
  const p = probes.get(kind);
  if (p) return p();
  return factories.has(kind) ? { kind, available: true } : { kind, available: false, reason: `unknown enclave backend; known: ${backendKinds().join(', ')}` };
}

const factories = new Map<string, BackendFactory>([
  ['emulated', (o) => new EmulatedBackend(o as EmulatedBackendOptions)],
  ['sgx', notYet('sgx', 'an SGX adapter (e.g. Gramine or Open Enclave host + an enclave JS/Wasm engine)')],
  ['optee', notYet('optee', 'an OP-TEE adapter (a TEE Client API bridge to a TA running a Wasm engine)')],
]);

/** Register (or replace) a backend kind, e.g. a hardware adapter package at start-up. */
export function registerBackend(kind: string, factory: BackendFactory, probe?: () => BackendProbe): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(kind)) throw new EnclaveEdgeError('BAD_PARAMETERS', `backend kind "${kind}" must be lowercase letters, digits and "-"`);
  factories.set(kind, factory);
  if (probe) probes.set(kind, probe);
  else probes.delete(kind);
}

export function backendKinds(): string[] {
  return [...factories.keys()];
}

export function createBackend(kind: string, options?: Record<string, unknown>): EnclaveBackend {
  const f = factories.get(kind);
  if (!f) throw new EnclaveEdgeError('NOT_SUPPORTED', `unknown enclave backend "${kind}"; known: ${backendKinds().join(', ')}`);
  return f(options);
}
