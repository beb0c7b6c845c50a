/**
 * The backend and the root of trust, chosen by the environment (ENCLAVE_BACKEND,
 * ENCLAVE_EDGE_ROT, ENCLAVE_EDGE_STATE_DIR, ENCLAVE_EDGE_PKCS11_URI, PKCS11_MODULE, ENCLAVE_EDGE_TPM_* — see
 * @enclave-edge/trust). If the root of trust cannot be opened, TAs still run but sealing,
 * storage and attestation fail NOT_SUPPORTED, and the runtime reports why: fail closed.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createBackend as createRegisteredBackend, probeBackend, type EnclaveBackend, type TrustServices } from '@enclave-edge/enclave';
import { createRootOfTrust, createTrustServices, initDeviceIdentity, loadDeviceChain, rootOfTrustConfigFromEnv, devicePaths, freshnessOptionsFromEnv } from '@enclave-edge/trust';
import type { Logger } from '@enclave-edge/observability';
import type { RuntimeConfig } from './config.js';

export interface RootOfTrustReport {
  kind: string;
  developmentGrade?: boolean;
  protects?: string;
  rollbackProtection?: string;
  stateDir?: string;
  /** Simulator/software: the development device CA verifiers need as trust anchor. */
  deviceCaPath?: string;
  error?: string;
}

export interface TrustSetup {
  backend: EnclaveBackend;
  services?: TrustServices;
  rootOfTrust: RootOfTrustReport;
  close(): Promise<void>;
}

/** The backend named by configuration, from the one registry; refused with the registry's reason when it cannot run here. */
export function createBackend(kind: string): EnclaveBackend {
  const probe = probeBackend(kind);
  if (!probe.available) throw new EnclaveEdgeError('NOT_SUPPORTED', `enclave backend "${kind}" is not available here: ${probe.reason ?? 'unknown reason'}`);
  return createRegisteredBackend(kind);
}

async function endBackend(backend: EnclaveBackend): Promise<void> {
  await backend.close?.().catch(() => undefined);
}

export async function setupTrust(cfg: RuntimeConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<TrustSetup> {
  const backend = createBackend(cfg.backend);
  const rotLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => log[level](fields ?? {}, message);
  try {
    const rotEnv = { ...env, ENCLAVE_EDGE_ROT: cfg.rootOfTrust, ENCLAVE_EDGE_STATE_DIR: cfg.sealedStorageDir };
    const root = await createRootOfTrust(rootOfTrustConfigFromEnv(rotEnv, { stateDir: cfg.sealedStorageDir }), rotLog);
    const report: RootOfTrustReport = { kind: root.kind, developmentGrade: root.developmentGrade, protects: root.protects, rollbackProtection: root.rollbackProtection, stateDir: root.stateDir };
    // In the simulator there is no provisioning step: create a development device identity
    // (self-signed CA) so attestation works out of the box. On a device, `enclave-edge device init`.
    if (cfg.simulated && !(await loadDeviceChain(root))) {
      await initDeviceIdentity({ root, mode: 'self-signed' });
      log.warn({ ca: devicePaths(root.stateDir).ca }, 'simulator: created a DEVELOPMENT device identity; verifiers need this CA as trust anchor');
    }
    if (cfg.simulated || root.developmentGrade) report.deviceCaPath = devicePaths(root.stateDir).ca;
    const services = createTrustServices({ rootOfTrust: root, log: rotLog, freshness: freshnessOptionsFromEnv(env) });
    if (root.developmentGrade) log.warn({ rootOfTrust: root.kind }, 'DEVELOPMENT root of trust: keys are in a file; never use this in production');
    return {
      backend,
      services,
      rootOfTrust: report,
      close: async () => {
        await endBackend(backend);
        await services.close();
      },
    };
  } catch (err) {
    const message = (err as Error).message;
    log.error({ rootOfTrust: cfg.rootOfTrust, err: message }, 'root of trust could not be opened; sealing, storage and attestation are disabled');
    return { backend, rootOfTrust: { kind: cfg.rootOfTrust, error: message }, close: () => endBackend(backend) };
  }
}
