/** Backends by kind, so callers pick one by configuration and adapters plug in without touching them. */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { EnclaveBackend } from './contract.js';
import { EmulatedBackend, type EmulatedBackendOptions } from './emulated/backend.js';

export type BackendFactory = (options?: Record<string, unknown>) => EnclaveBackend;

const notYet = (kind: string, what: string): BackendFactory => () => {
  throw new EnclaveEdgeError('NOT_SUPPORTED', `the "${kind}" enclave backend is not available in this build: it needs ${what} behind the EnclaveBackend contract (see docs/enclave-backends.md); use "emulated"`);
};

const factories = new Map<string, BackendFactory>([
  ['emulated', (o) => new EmulatedBackend(o as EmulatedBackendOptions)],
  ['sgx', notYet('sgx', 'an SGX adapter (e.g. Gramine or Open Enclave host + an enclave JS/Wasm engine)')],
  ['optee', notYet('optee', 'an OP-TEE adapter (a TEE Client API bridge to a TA running a Wasm engine)')],
]);

/** Register (or replace) a backend kind, e.g. a hardware adapter package at start-up. */
export function registerBackend(kind: string, factory: BackendFactory): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(kind)) throw new EnclaveEdgeError('BAD_PARAMETERS', `backend kind "${kind}" must be lowercase letters, digits and "-"`);
  factories.set(kind, factory);
}

export function backendKinds(): string[] {
  return [...factories.keys()];
}

export function createBackend(kind: string, options?: Record<string, unknown>): EnclaveBackend {
  const f = factories.get(kind);
  if (!f) throw new EnclaveEdgeError('NOT_SUPPORTED', `unknown enclave backend "${kind}"; known: ${backendKinds().join(', ')}`);
  return f(options);
}
