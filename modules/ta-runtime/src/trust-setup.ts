/**
 * The backend and the root of trust, chosen by the environment. Trust services come from
 * @enclave-edge/trust; without them TAs still run but sealing and attestation fail
 * NOT_SUPPORTED (and the runtime says so in its reported properties).
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { EnclaveBackend, TrustServices } from '@enclave-edge/enclave';
import type { Logger } from '@enclave-edge/observability';
import type { RuntimeConfig } from './config.js';

export interface TrustSetup {
  backend: EnclaveBackend;
  services?: TrustServices;
  rootOfTrust: { kind: string; developmentGrade?: boolean; protects?: string; rollbackProtection?: string; error?: string };
  close(): Promise<void>;
}

export async function createBackend(kind: string): Promise<EnclaveBackend> {
  const mod = (await import('@enclave-edge/enclave')) as Record<string, unknown>;
  if (kind !== 'emulated') throw new EnclaveEdgeError('NOT_SUPPORTED', `enclave backend "${kind}" is not available in this build (only "emulated")`);
  const Ctor = mod.EmulatedBackend as (new () => EnclaveBackend) | undefined;
  if (typeof Ctor !== 'function') throw new EnclaveEdgeError('NOT_SUPPORTED', '@enclave-edge/enclave does not export EmulatedBackend');
  return new Ctor();
}

export async function setupTrust(cfg: RuntimeConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<TrustSetup> {
  const backend = await createBackend(cfg.backend);
  const trust = (await import('@enclave-edge/trust')) as Record<string, any>;
  if (typeof trust.createRootOfTrust !== 'function' || typeof trust.createTrustServices !== 'function') {
    log.warn('no root of trust available (@enclave-edge/trust exports no createRootOfTrust); sealing and attestation are disabled');
    return { backend, rootOfTrust: { kind: 'none', error: 'trust package not available' }, close: async () => undefined };
  }
  try {
    const root = await trust.createRootOfTrust({
      kind: cfg.rootOfTrust,
      stateDir: cfg.sealedStorageDir,
      env,
      log: (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => log[level](fields ?? {}, message),
    });
    const services: TrustServices = await trust.createTrustServices({ root, storageDir: cfg.sealedStorageDir, stateDir: cfg.sealedStorageDir });
    if (root.developmentGrade) log.warn({ rootOfTrust: root.kind }, 'DEVELOPMENT root of trust: keys are in a file; never use this in production');
    return {
      backend,
      services,
      rootOfTrust: { kind: root.kind, developmentGrade: root.developmentGrade, protects: root.protects, rollbackProtection: root.rollbackProtection },
      close: () => root.close(),
    };
  } catch (err) {
    const message = (err as Error).message;
    log.error({ rootOfTrust: cfg.rootOfTrust, err: message }, 'root of trust could not be opened; sealing and attestation are disabled');
    return { backend, rootOfTrust: { kind: cfg.rootOfTrust, error: message }, close: async () => undefined };
  }
}
