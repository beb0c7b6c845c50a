/** Roots of trust, sealing, sealed storage and device identity for the ta-runtime. */
export type { RootOfTrust, RootOfTrustKind, RotLog, MonotonicCounter, PlatformQuote, PlatformQuoter } from './rot/types.js';
export { createRootOfTrust, parseRootOfTrustConfig, rootOfTrustConfigFromEnv, RootOfTrustConfigSchema, type RootOfTrustConfig } from './rot/config.js';
export { openSoftwareRoot, SOFTWARE_KEY_FILE } from './rot/software.js';
export { openPkcs11Root, PKCS11_SEAL_LABEL, PKCS11_ATTESTATION_LABEL, type Pkcs11RootOptions } from './rot/pkcs11.js';
export { openWorkloadRoot, WORKLOAD_ROOT_FILE } from './rot/workload.js';
export { openTpmRoot, TPM_ROOT_FILE, TPM_DEFAULTS, type TpmRootOptions, type TpmRootOfTrust } from './rot/tpm.js';
export { TpmDriver, parsePcrSelection, NON_EXPORTABLE_ATTRS, type TpmFixedInfo, type TpmQuoteResult } from './tpm/driver.js';
export { checkTcti, TpmToolError } from './tpm/tools.js';
export { workloadEncrypt, workloadDecrypt, WORKLOAD_API_VERSION, type WorkloadTarget } from './rot/workload-client.js';
export { Sealer, sealKeyInfo, inspectSealedBlob, SEAL_MAGIC, SEAL_VERSION, SEAL_HEADER_BYTES, SEAL_OVERHEAD, type SealIdentity } from './seal.js';
export { SealedFileStore, taStorageDirName, storageEntryCost, STORAGE_KEY_RE, DEFAULT_MAX_KEYS, ENTRY_OVERHEAD_BYTES, type SealedStore } from './storage.js';
export { initDeviceIdentity, importDeviceCertificate, loadDeviceChain, devicePaths, type DeviceInitResult } from './device.js';
export { createTrustServices, DEFAULT_QUOTA_BYTES, type TrustServicesOptions, type TrustServicesImpl } from './services.js';
export { writeFileAtomic } from '@enclave-edge/durable-files';
export { FreshnessLedger, FRESHNESS_MANIFEST, FRESHNESS_DEFAULTS, freshnessOptionsFromEnv, type FreshnessOptions, type StoreFreshnessHook } from './freshness.js';
export { hkdfExpandSha256 } from './hkdf.js';
export type { TAIdentity } from './identity.js';
