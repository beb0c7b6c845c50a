/**
 * The TA identity sealing, storage and attestation bind to. Structurally the same as
 * TAIdentity in @enclave-edge/enclave/backend (not imported, so trust does not depend on the backend).
 */
export interface TAIdentity {
  name: string;
  uuid: string;
  version: string;
  measurement: string;
  signerId: string;
  productId: number;
  securityVersion: number;
  debug: boolean;
}
