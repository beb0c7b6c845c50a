/** One interface for every root of trust: where the seal secret and the attestation key live. */
import type { EvidenceSigner } from '@enclave-edge/attestation';

export type RootOfTrustKind = 'software' | 'pkcs11' | 'workload' | 'tpm';

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
  /** A hardware monotonic counter (tpm): sealed storage binds its freshness to it. */
  readonly counter?: MonotonicCounter;
  /** Platform evidence (tpm): a quote over PCRs by the attestation key. */
  readonly quoter?: PlatformQuoter;
  close(): Promise<void>;
}

export interface MonotonicCounter {
  /** For messages: which counter (e.g. "TPM NV counter 0x01500ee0"). */
  readonly description: string;
  read(): Promise<bigint>;
  /** Increment and return the new value. */
  increment(): Promise<bigint>;
}

export interface PlatformQuote {
  /** The signed structure (TPMS_ATTEST). */
  attest: Uint8Array;
  /** ES256 raw r||s over SHA-256(attest) by the attestation key. */
  signature: Uint8Array;
  /** Quoted PCR values, `sha256:<i>` → hex. */
  pcrs: Record<string, string>;
}

export interface PlatformQuoter {
  /** e.g. `sha256:0-7`. */
  readonly pcrSelection: string;
  quote(qualifyingData: Uint8Array): Promise<PlatformQuote>;
}

export type RotLog = (level: 'debug' | 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
