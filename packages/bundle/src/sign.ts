/** Signing a bundle: directly with a Signer, or offline (digest out, signature in). */
import { createHash } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { decodeBundle, encodeBundle, type BundleSections } from './format.js';
import { computeMeasurement, sha256Hex } from './measurement.js';
import { buildProtectedHeader, buildSigningInput, verifyRawSignature, type SignedPayload, type SignerKeyInfo } from './jws.js';
import { normalizeEcdsaSignature, toLowS } from './ecdsa-signature.js';
import type { Signer } from './signers/signer.js';

export function payloadOf(s: BundleSections): SignedPayload {
  const p: SignedPayload = { manifest: s.manifest, measurement: computeMeasurement(s.manifestBytes, s.code) };
  if (s.sourceMap) p.sourceMapSha256 = sha256Hex(s.sourceMap);
  return p;
}

function keyInfo(k: SignerKeyInfo): SignerKeyInfo {
  return k.certificateChain?.length ? { spki: k.spki, certificateChain: k.certificateChain } : { spki: k.spki };
}

export interface SigningDigest {
  /** The JWS signing input (ASCII) to sign with ES256 (SHA-256 then ECDSA P-256). */
  signingInput: string;
  /** SHA-256 of the signing input, hex: what a raw-ECDSA HSM (CKM_ECDSA) signs. */
  sha256: string;
  measurement: string;
}

/** What to sign for `key` (its public key or certificate chain is part of the signed header). Any existing signature is ignored. */
export function digestBundle(bundle: Uint8Array, key: SignerKeyInfo): SigningDigest {
  const s = decodeBundle(bundle);
  const payload = payloadOf(s);
  const signingInput = buildSigningInput(buildProtectedHeader(keyInfo(key)), payload);
  return { signingInput, sha256: createHash('sha256').update(signingInput, 'ascii').digest('hex'), measurement: payload.measurement };
}

/**
 * Complete an offline signature: `signature` is ES256 over the signing input from `digestBundle`
 * with the same key info (raw r||s, DER, or base64/hex of either). Checked, and brought to low-S, before it is attached.
 */
export function attachSignature(bundle: Uint8Array, signature: Uint8Array, key: SignerKeyInfo): Uint8Array {
  const s = decodeBundle(bundle);
  const { signingInput } = digestBundle(bundle, key);
  const raw = toLowS(normalizeEcdsaSignature(signature));
  if (!verifyRawSignature(key.spki, signingInput, raw)) {
    throw new EnclaveEdgeError('SIGNATURE_INVALID', 'the signature does not verify over this bundle\'s signing input with the given key (wrong key, or signed a different digest)');
  }
  const jws = signingInput + '.' + Buffer.from(raw).toString('base64url');
  return encodeBundle({ manifest: s.manifest, code: s.code, ...(s.sourceMap ? { sourceMap: s.sourceMap } : {}), signature: jws });
}

/** Sign (or re-sign) a bundle with `signer`. */
export async function signBundle(bundle: Uint8Array, signer: Signer): Promise<Uint8Array> {
  if (signer.alg !== 'ES256') throw new EnclaveEdgeError('NOT_SUPPORTED', `signer algorithm ${String(signer.alg)} is not supported (ES256 only)`);
  const key = { spki: signer.spki, ...(signer.certificateChain ? { certificateChain: signer.certificateChain } : {}) };
  const { signingInput } = digestBundle(bundle, key);
  const sig = await signer.sign(Buffer.from(signingInput, 'ascii'));
  return attachSignature(bundle, sig, key);
}
