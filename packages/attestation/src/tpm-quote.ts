/**
 * TPM 2.0 quotes in evidence: the structure the TPM signs (TPMS_ATTEST), how the quote is bound
 * to the EAT nonce, and its verification. Structures from TCG "TPM 2.0 Library, Part 2:
 * Structures": TPMS_ATTEST, TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, TPMS_CLOCK_INFO,
 * TPMS_QUOTE_INFO, TPML_PCR_SELECTION / TPMS_PCR_SELECTION, TPM2B_*. All integers big-endian.
 */
import { createHash, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/** TPM_GENERATED_VALUE: "\xffTCG", which a restricted key never signs for anything but the TPM's own structures. */
export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
const TPM_ALG_SHA256 = 0x000b;
const QUOTE_DOMAIN = 'enclave-edge/v1/tpm-quote\0';

export interface TpmsAttestQuote {
  magic: number;
  type: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  /** Selected PCRs per bank, in the TPM's order (ascending index). */
  selection: Array<{ hashAlg: number; indices: number[] }>;
  pcrDigest: Uint8Array;
}

/** The claim the EAT carries with the `tpm` root of trust. */
export const TpmQuoteClaimSchema = z.strictObject({
  /** base64url of the TPMS_ATTEST bytes. */
  attest: z.string().regex(/^[A-Za-z0-9_-]+$/).max(2048),
  /** base64url of the ECDSA P-256 signature, raw r||s, over SHA-256(attest). */
  sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  /** The quoted PCR values, `sha256:<index>` → 64 hex digits. */
  pcrs: z.record(z.string().regex(/^sha256:(\d|1\d|2[0-3])$/), z.string().regex(/^[0-9a-f]{64}$/)),
});
export type TpmQuoteClaim = z.infer<typeof TpmQuoteClaimSchema>;

/** The quote's qualifying data for an EAT nonce: the one binding rule for issuer and verifier. */
export function quoteQualifyingData(eatNonce: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(QUOTE_DOMAIN).update(eatNonce).digest());
}

export class TpmParseError extends Error {}

/** Parse a TPMS_ATTEST holding a quote (TPMS_QUOTE_INFO); throws TpmParseError on anything else. */
export function parseTpmsAttestQuote(bytes: Uint8Array): TpmsAttestQuote {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  const need = (n: number) => {
    if (off + n > b.length) throw new TpmParseError(`TPMS_ATTEST truncated at byte ${off}`);
  };
  const u8 = () => (need(1), b[off++]!);
  const u16 = () => (need(2), (off += 2), b.readUInt16BE(off - 2));
  const u32 = () => (need(4), (off += 4), b.readUInt32BE(off - 4));
  const u64 = () => (need(8), (off += 8), b.readBigUInt64BE(off - 8));
  const tpm2b = () => {
    const n = u16();
    need(n);
    off += n;
    return new Uint8Array(b.subarray(off - n, off));
  };
  const magic = u32();
  if (magic !== TPM_GENERATED_VALUE) throw new TpmParseError('not a TPM-generated structure (magic is not TPM_GENERATED_VALUE)');
  const type = u16();
  if (type !== TPM_ST_ATTEST_QUOTE) throw new TpmParseError(`not a quote (type 0x${type.toString(16)}, expected TPM_ST_ATTEST_QUOTE)`);
  const qualifiedSigner = tpm2b();
  const extraData = tpm2b();
  const clock = u64();
  const resetCount = u32();
  const restartCount = u32();
  const safe = u8() === 1;
  const firmwareVersion = u64();
  const count = u32();
  if (count > 16) throw new TpmParseError('TPML_PCR_SELECTION has too many banks');
  const selection: TpmsAttestQuote['selection'] = [];
  for (let i = 0; i < count; i++) {
    const hashAlg = u16();
    const size = u8();
    if (size > 8) throw new TpmParseError('TPMS_PCR_SELECTION sizeofSelect too large');
    const indices: number[] = [];
    for (let byte = 0; byte < size; byte++) {
      const bits = u8();
      for (let bit = 0; bit < 8; bit++) if (bits & (1 << bit)) indices.push(byte * 8 + bit);
    }
    selection.push({ hashAlg, indices });
  }
  const pcrDigest = tpm2b();
  if (off !== b.length) throw new TpmParseError(`TPMS_ATTEST has ${b.length - off} trailing bytes`);
  return { magic, type, qualifiedSigner, extraData, clock, resetCount, restartCount, safe, firmwareVersion, selection, pcrDigest };
}

export interface VerifiedQuote {
  pcrs: Record<string, string>;
  resetCount: number;
  restartCount: number;
  /** TPM_PT_FIRMWARE_VERSION_1.TPM_PT_FIRMWARE_VERSION_2 in hex (vendor-defined meaning). */
  firmwareVersion: string;
}

/**
 * Check a quote claim: signature by `key` (the certified attestation key), nonce binding, and
 * that the reported PCR values are the ones the TPM digested. Returns the problem, or the result.
 */
export function checkTpmQuote(claim: TpmQuoteClaim, key: KeyObject, eatNonce: Uint8Array): { problem: string } | { quote: VerifiedQuote } {
  const attest = Buffer.from(claim.attest, 'base64url');
  const sig = Buffer.from(claim.sig, 'base64url');
  if (!nodeVerify('sha256', attest, { key, dsaEncoding: 'ieee-p1363' }, sig)) {
    return { problem: 'the TPM quote signature does not verify with the certified attestation key (altered, or signed by another key)' };
  }
  let q: TpmsAttestQuote;
  try {
    q = parseTpmsAttestQuote(attest);
  } catch (err) {
    return { problem: `the TPM quote is malformed: ${(err as Error).message}` };
  }
  if (!Buffer.from(q.extraData).equals(Buffer.from(quoteQualifyingData(eatNonce)))) {
    return { problem: 'the TPM quote is not bound to this evidence\'s nonce (its qualifying data differs)' };
  }
  if (q.selection.length !== 1 || q.selection[0]!.hashAlg !== TPM_ALG_SHA256 || !q.selection[0]!.indices.length) {
    return { problem: 'the TPM quote must select PCRs of exactly one bank, SHA-256' };
  }
  const indices = q.selection[0]!.indices;
  const reported = Object.keys(claim.pcrs).map((k) => Number(k.slice('sha256:'.length))).sort((a, b) => a - b);
  if (reported.join(',') !== indices.join(',')) {
    return { problem: `the reported PCRs (${reported.join(',')}) are not the ones quoted (${indices.join(',')})` };
  }
  // pcrDigest = H(PCR[i0] || PCR[i1] || …) in selection order (TPMS_QUOTE_INFO).
  const h = createHash('sha256');
  for (const i of indices) h.update(Buffer.from(claim.pcrs[`sha256:${i}`]!, 'hex'));
  if (!h.digest().equals(Buffer.from(q.pcrDigest))) {
    return { problem: 'the reported PCR values do not match the digest the TPM signed (altered PCR values)' };
  }
  const fw = q.firmwareVersion;
  return {
    quote: {
      pcrs: { ...claim.pcrs },
      resetCount: q.resetCount,
      restartCount: q.restartCount,
      firmwareVersion: `${(fw >> 32n).toString(16).padStart(8, '0')}.${(fw & 0xffffffffn).toString(16).padStart(8, '0')}`,
    },
  };
}
