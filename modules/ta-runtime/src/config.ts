/** Module settings from the environment (set in the deployment manifest or the Dockerfile). */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultMetricsPort } from '@enclave-edge/observability';

export interface RuntimeConfig {
  moduleId: string;
  deviceId: string;
  /** True when started by the enclave-edge simulator rather than a real IoT Edge runtime. */
  simulated: boolean;
  rootOfTrust: string;
  backend: string;
  sealedStorageDir: string;
  bundleDir: string;
  metricsPort: number;
}

const MODULE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function readConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  const simulated = env.EDGESIM_GATEWAY_HTTPS_PORT !== undefined;
  const moduleId = env.IOTEDGE_MODULEID ?? 'ta-runtime';
  const deviceId = env.IOTEDGE_DEVICEID ?? 'local';
  // The manifest names a container volume path; in the simulator that path is not ours to
  // write, so state goes to the simulator's per-module folder (<state dir>/modules/ta-runtime/,
  // reset together with the module identities it is bound to), else .sim-state/<device>/.
  const configured = env.ENCLAVE_EDGE_STATE_DIR ?? env.SEALED_STORAGE_DIR;
  const sealedStorageDir = configured && !(simulated && configured.startsWith('/var/lib/'))
    ? configured
    : env.EDGESIM_MODULE_STATE_DIR ?? join(MODULE_DIR, '.sim-state', deviceId.replace(/[^A-Za-z0-9_.-]/g, '_'));
  return {
    moduleId,
    deviceId,
    simulated,
    rootOfTrust: env.ENCLAVE_EDGE_ROT ?? (env.IOTEDGE_WORKLOADURI ? 'workload' : 'software'),
    backend: env.ENCLAVE_BACKEND ?? 'emulated',
    sealedStorageDir,
    bundleDir: env.TA_BUNDLE_DIR ?? join(MODULE_DIR, 'tas'),
    metricsPort: defaultMetricsPort(env),
  };
}
