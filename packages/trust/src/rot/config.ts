/** Root-of-trust configuration (validated) and the factory. */
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { openSoftwareRoot } from './software.js';
import { openPkcs11Root } from './pkcs11.js';
import { openWorkloadRoot } from './workload.js';
import { openTpmRoot } from './tpm.js';
import type { RootOfTrust, RotLog } from './types.js';

export const RootOfTrustConfigSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('software'), stateDir: z.string().min(1) }),
  z.strictObject({
    kind: z.literal('pkcs11'),
    stateDir: z.string().min(1),
    uri: z.string().regex(/^pkcs11:/i, 'must be a pkcs11: URI'),
    modulePath: z.string().min(1).optional(),
    pin: z.string().optional(),
    sealKeyLabel: z.string().min(1).optional(),
    attestationKeyLabel: z.string().min(1).optional(),
  }),
  z.strictObject({
    kind: z.literal('workload'),
    stateDir: z.string().min(1),
    workloadUri: z.string().min(1),
    moduleId: z.string().min(1),
    generationId: z.string().min(1),
  }),
  z.strictObject({
    kind: z.literal('tpm'),
    stateDir: z.string().min(1),
    /** Which TPM: `device:/dev/tpmrm0` on a device, `swtpm:host=127.0.0.1,port=2321` for a software TPM. */
    tcti: z.string().min(1).default('device:/dev/tpmrm0'),
    sealKeyHandle: tpmHandle(0x81000000, 0x81ffffff).optional(),
    attestationKeyHandle: tpmHandle(0x81000000, 0x81ffffff).optional(),
    counterIndex: tpmHandle(0x01000000, 0x01ffffff).optional(),
    /** PCRs the quote covers, e.g. `sha256:0-7` (default). */
    pcrs: z.string().min(1).optional(),
  }),
]);

/** A TPM handle as a number or a hex string (`0x81010ee0`), within its range. */
function tpmHandle(min: number, max: number) {
  return z
    .union([z.number().int(), z.string().regex(/^0x[0-9a-fA-F]{1,8}$/).transform((s) => parseInt(s, 16))])
    .refine((n) => n >= min && n <= max, `must be a TPM handle in 0x${min.toString(16)}..0x${max.toString(16)}`);
}

export type RootOfTrustConfig = z.infer<typeof RootOfTrustConfigSchema>;

export function parseRootOfTrustConfig(input: unknown): RootOfTrustConfig {
  const r = RootOfTrustConfigSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new EnclaveEdgeError('CONFIG_INVALID', `invalid root-of-trust configuration: ${i ? `${i.path.join('.') || 'kind'}: ${i.message}` : ''}`);
  }
  return r.data;
}

/**
 * From the module environment: ENCLAVE_EDGE_ROT=software|pkcs11|workload (default software),
 * ENCLAVE_EDGE_STATE_DIR, ENCLAVE_EDGE_PKCS11_URI (PIN: URI, pin-source, or PKCS11_PIN),
 * for workload the IoT Edge variables IOTEDGE_WORKLOADURI, IOTEDGE_MODULEID, IOTEDGE_MODULEGENERATIONID,
 * for tpm ENCLAVE_EDGE_TPM_TCTI (default device:/dev/tpmrm0) and ENCLAVE_EDGE_TPM_PCRS.
 */
export function rootOfTrustConfigFromEnv(env: NodeJS.ProcessEnv = process.env, defaults: { stateDir?: string } = {}): RootOfTrustConfig {
  const kind = env.ENCLAVE_EDGE_ROT ?? 'software';
  const stateDir = env.ENCLAVE_EDGE_STATE_DIR ?? defaults.stateDir;
  const base = { kind, stateDir };
  if (kind === 'pkcs11') return parseRootOfTrustConfig({ ...base, uri: env.ENCLAVE_EDGE_PKCS11_URI, ...(env.PKCS11_MODULE ? { modulePath: env.PKCS11_MODULE } : {}) });
  if (kind === 'workload') {
    return parseRootOfTrustConfig({ ...base, workloadUri: env.IOTEDGE_WORKLOADURI, moduleId: env.IOTEDGE_MODULEID, generationId: env.IOTEDGE_MODULEGENERATIONID });
  }
  if (kind === 'tpm') {
    return parseRootOfTrustConfig({ ...base, ...(env.ENCLAVE_EDGE_TPM_TCTI ? { tcti: env.ENCLAVE_EDGE_TPM_TCTI } : {}), ...(env.ENCLAVE_EDGE_TPM_PCRS ? { pcrs: env.ENCLAVE_EDGE_TPM_PCRS } : {}) });
  }
  return parseRootOfTrustConfig(base);
}

export async function createRootOfTrust(config: RootOfTrustConfig | unknown, log?: RotLog): Promise<RootOfTrust> {
  const c = parseRootOfTrustConfig(config);
  switch (c.kind) {
    case 'software':
      return openSoftwareRoot({ stateDir: c.stateDir, log });
    case 'pkcs11':
      return openPkcs11Root({ ...c, log });
    case 'workload':
      return openWorkloadRoot({ stateDir: c.stateDir, workload: { uri: c.workloadUri, moduleId: c.moduleId, generationId: c.generationId }, log });
    case 'tpm':
      return openTpmRoot({ ...c, log });
  }
}
