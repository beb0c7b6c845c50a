/**
 * The TA identity sealing, storage and attestation bind to: ta-sdk's TAInfo, the same type the
 * enclave backend's TAIdentity is (trust does not depend on the backend).
 */
export type { TAInfo as TAIdentity } from '@enclave-edge/ta-sdk';
