/** Verifier policy: strict by default (no debug, no emulated, 5-minute maximum age). */
import { z } from 'zod';
import { EnclaveEdgeError } from '@enclave-edge/errors';

const hex64 = z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected a 64-hex-digit SHA-256').transform((s) => s.toLowerCase());

export const VerifierPolicySchema = z.strictObject({
  /** Allowed `unique_id` values (measurements); absent = any. */
  allowedMeasurements: z.array(hex64).optional(),
  /** Allowed `signer_id` values; absent = any. */
  allowedSigners: z.array(hex64).optional(),
  productIds: z.array(z.number().int().min(0)).optional(),
  minSecurityVersion: z.number().int().min(0).default(0),
  allowDebug: z.boolean().default(false),
  allowEmulated: z.boolean().default(false),
  /** Allowed isolation backends (`tee` claim, e.g. `sgx`); absent = any but `emulated` unless allowEmulated. */
  allowedTees: z.array(z.string()).optional(),
  /** Allowed roots of trust (`software`, `pkcs11`, `workload`); absent = any. */
  allowedRootsOfTrust: z.array(z.string()).optional(),
  /**
   * SHA-256 fingerprints (hex, colons allowed) of the certificate that must have issued the
   * attestation leaf: pins a dedicated attestation CA below a broader anchor (O8). Absent = any.
   */
  attestationIssuers: z.array(z.string().transform((s) => s.replace(/:/g, '').toLowerCase()).pipe(z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 certificate fingerprint (64 hex digits, colons allowed)'))).optional(),
  /** Extended key usage OIDs the leaf certificate must carry (e.g. your PKI's attestation EKU). */
  requiredLeafEku: z.array(z.string().regex(/^[0-2](\.\d+)+$/, 'expected a dotted OID')).optional(),
  /**
   * Reference PCR values (`sha256:<index>` → hex) the TPM quote must show. Evidence without a
   * quote, or whose quote does not cover a listed PCR, is refused.
   */
  pcrs: z.record(z.string().regex(/^sha256:(\d|1\d|2[0-3])$/, 'expected sha256:<0-23>'), z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits').transform((s) => s.toLowerCase())).optional(),
  /** Maximum age of `iat`, in seconds. */
  maxAgeSeconds: z.number().int().positive().default(300),
  /** Clock skew tolerated on iat/exp, in seconds. */
  clockToleranceSeconds: z.number().int().min(0).default(30),
});

export type VerifierPolicyInput = z.input<typeof VerifierPolicySchema>;
export type VerifierPolicy = z.output<typeof VerifierPolicySchema>;

export function parsePolicy(input: unknown): VerifierPolicy {
  const r = VerifierPolicySchema.safeParse(input ?? {});
  if (!r.success) {
    const first = r.error.issues[0];
    throw new EnclaveEdgeError('CONFIG_INVALID', `invalid verifier policy: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unknown'}`);
  }
  return r.data;
}
