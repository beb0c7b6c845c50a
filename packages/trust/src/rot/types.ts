/** One interface for every root of trust: where the seal secret and the attestation key live. */
import type { EvidenceSigner } from '@enclave-edge/attestation';

export type RootOfTrustKind = 'software' | 'pkcs11' | 'workload';

export interface RootOfTrust {
  readonly kind: RootOfTrustKind;
  /** True for `software`: logs and evidence must say development-grade. */
  readonly developmentGrade: boolean;
  /** One honest paragraph: what it protects, and from whom. */
  readonly protects: string;
  /** What it does against rollback (replaying old sealed state). */
  readonly rollbackProtection: string;
  /** The state directory it keeps its files in (key file, wrapped secret, device chain). */
  readonly stateDir: string;
  /**
   * A 32-byte key derived (HKDF-Expand, HMAC-SHA256) from the root seal secret with `info`.
   * For pkcs11 the HMAC runs in the token: the root secret never leaves it; derived keys do.
   */
  deriveKey(info: Uint8Array): Promise<Uint8Array>;
  /** The device attestation key (ES256). */
  readonly attestationSigner: EvidenceSigner;
  close(): Promise<void>;
}

export type RotLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
