/**
 * The enclave-edge EAT profile (see docs/sealing-and-attestation.md): RFC 9711 claims in JSON,
 * Open Enclave's names for the TA identity, `cnf.jwk` (RFC 7800) for the TA's public key.
 */
import { z } from 'zod';
import { TpmQuoteClaimSchema } from './tpm-quote.js';

export const EAT_PROFILE = 'tag:enclave-edge.dev,2026:eat/v1';
export const EAT_JWT_TYP = 'eat+jwt';

/** RFC 9711 dbgstat values used here. */
export const DBGSTAT_ENABLED = 0;
export const DBGSTAT_DISABLED = 1;

/** OE_REPORT_ATTRIBUTES_* bits, as Open Enclave's `attributes` claim carries them. */
export const ATTRIBUTE_DEBUG = 0x1;
export const ATTRIBUTE_REMOTE = 0x2;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');

export const JwkPublicSchema = z.looseObject({
  kty: z.string(),
  crv: z.string().optional(),
  x: z.string().optional(),
  y: z.string().optional(),
  n: z.string().optional(),
  e: z.string().optional(),
}).refine((j) => !('d' in j), 'a private key must never appear in evidence');

export const EvidenceClaimsSchema = z.object({
  eat_profile: z.literal(EAT_PROFILE),
  eat_nonce: z.string().regex(/^[A-Za-z0-9_-]{11,74}$/, 'eat_nonce must be the base64url of 8..55 bytes (RFC 9711 §4.1: a JSON nonce is a text string of at most 74 bytes)'),
  ueid: z.string().regex(/^[A-Za-z0-9_-]+$/),
  iat: z.number().int(),
  exp: z.number().int(),
  dbgstat: z.number().int().min(0).max(4),
  tee: z.string().min(1),
  rot: z.string().min(1),
  unique_id: hex64,
  signer_id: hex64,
  product_id: z.number().int().min(0),
  security_version: z.number().int().min(0),
  attributes: z.number().int().min(0),
  ta: z.object({ name: z.string(), uuid: z.string(), version: z.string() }),
  cnf: z.object({ jwk: JwkPublicSchema }).optional(),
  claims: z.record(z.string(), z.unknown()).optional(),
  /** With rot `tpm`: a TPM quote over PCRs by the attestation key, bound to eat_nonce (tpm-quote.ts). */
  tpm_quote: TpmQuoteClaimSchema.optional(),
});

export type EvidenceClaims = z.infer<typeof EvidenceClaimsSchema>;

/** The identity of the attested TA, as the runtime measured it. */
export interface AttestedTA {
  name: string;
  uuid: string;
  version: string;
  measurement: string;
  signerId: string;
  productId: number;
  securityVersion: number;
  debug: boolean;
}
