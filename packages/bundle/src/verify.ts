/**
 * Verification: format → measurement → signature → signer, each failure a named EnclaveEdgeError.
 * Whether a verified bundle may run (debug, SVN, caps, …) is admission's decision (admission.ts).
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { decodeBundle } from './format.js';
import { canonicalJson } from './canonical-json.js';
import { checkJwsSignature, checkJwsSignatureAsync, parseCompactJws, type ParsedJws, type SignedPayload } from './jws.js';
import type { BundleSections } from './format.js';
import { computeSignerId } from './measurement.js';
import { payloadOf } from './sign.js';
import type { TAManifest, VerifiedBundle } from './types.js';

export interface VerifyOptions {
  /** Accept only these signers (signer_id hex). Required, as a JWS library requires a key: there is no "any signer". */
  trustedSigners: readonly string[];
}

/** canonicalJson(payload), built around the manifest section, which decodeBundle proved canonical. */
function expectedPayloadText(s: BundleSections, expected: SignedPayload): string {
  const manifestText = Buffer.from(s.manifestBytes.buffer, s.manifestBytes.byteOffset, s.manifestBytes.byteLength).toString('utf8');
  const sm = expected.sourceMapSha256 === undefined ? '' : `,"sourceMapSha256":"${expected.sourceMapSha256}"`;
  return `{"manifest":${manifestText},"measurement":"${expected.measurement}"${sm}}`;
}

function compareSignedPayload(signedText: string, s: BundleSections, expected: SignedPayload): void {
  if (signedText === expectedPayloadText(s, expected)) return;
  let signed: Partial<SignedPayload>;
  try {
    signed = JSON.parse(signedText) as Partial<SignedPayload>;
  } catch {
    throw new EnclaveEdgeError('SIGNATURE_INVALID', 'bundle signature: JWS payload is not JSON');
  }
  if (signed.measurement !== expected.measurement) {
    throw new EnclaveEdgeError('MEASUREMENT_MISMATCH', `bundle measurement ${expected.measurement} does not match the signed measurement ${String(signed.measurement)}`);
  }
  if (canonicalJson(signed.manifest ?? null) !== canonicalJson(expected.manifest)) {
    throw new EnclaveEdgeError('MEASUREMENT_MISMATCH', 'the bundle manifest differs from the signed manifest');
  }
  if (signed.sourceMapSha256 !== expected.sourceMapSha256) {
    throw new EnclaveEdgeError('MEASUREMENT_MISMATCH', 'the source map section differs from the signed source map digest');
  }
  throw new EnclaveEdgeError('SIGNATURE_INVALID', 'bundle signature: JWS payload is not the canonical {manifest, measurement} of this bundle');
}

function signedParts(bytes: Uint8Array): { s: BundleSections; jws: ParsedJws } {
  const s = decodeBundle(bytes);
  if (s.signature === undefined) throw new EnclaveEdgeError('SIGNATURE_INVALID', 'bundle is unsigned (no signature section); sign it with `enclave-edge ta sign`');
  return { s, jws: parseCompactJws(s.signature) };
}

function checkSigner(s: BundleSections, jws: ParsedJws, expected: SignedPayload, options: VerifyOptions): VerifiedBundle {
  const signerId = computeSignerId(jws.spki);
  if (!options?.trustedSigners?.some((x) => x.toLowerCase() === signerId)) {
    throw new EnclaveEdgeError('POLICY_VIOLATION', `signer ${signerId} is not one of the trusted signers`);
  }
  const out: VerifiedBundle = {
    manifest: s.manifest,
    code: s.code,
    measurement: expected.measurement,
    signerId,
    signerSpki: jws.spki,
    size: s.size,
  };
  if (s.sourceMap) out.sourceMap = s.sourceMap;
  if ('x5c' in jws.header) out.certificateChain = [...jws.header.x5c];
  return out;
}

export function verifyBundle(bytes: Uint8Array, options: VerifyOptions): VerifiedBundle {
  const { s, jws } = signedParts(bytes);
  const expected = payloadOf(s);
  compareSignedPayload(jws.payloadText, s, expected);
  checkJwsSignature(jws);
  return checkSigner(s, jws, expected, options);
}

/**
 * Same checks and errors as verifyBundle, but the ES256 check runs on the thread pool while
 * this thread hashes the code: less latency for large bundles when a core is free.
 */
export async function verifyBundleAsync(bytes: Uint8Array, options: VerifyOptions): Promise<VerifiedBundle> {
  const { s, jws } = signedParts(bytes);
  const signature = checkJwsSignatureAsync(jws);
  signature.catch(() => undefined); // reported below, after the measurement (the documented order)
  const expected = payloadOf(s);
  compareSignedPayload(jws.payloadText, s, expected);
  await signature;
  return checkSigner(s, jws, expected, options);
}

export interface BundleInspection {
  manifest: TAManifest;
  measurement: string;
  sizes: { total: number; manifest: number; code: number; sourceMap: number; signature: number };
  signed: boolean;
  /** Present when signed and the signature structure parses. */
  signerId?: string;
  certificateChain?: string[];
  /** `ok`, `unsigned`, or the reason verification failed. */
  verification: { ok: boolean; code?: string; reason?: string };
}

/** Describe a bundle without requiring it to verify (format errors still throw). */
export function inspectBundle(bytes: Uint8Array): BundleInspection {
  const s = decodeBundle(bytes);
  const expected = payloadOf(s);
  const out: BundleInspection = {
    manifest: s.manifest,
    measurement: expected.measurement,
    sizes: {
      total: s.size,
      manifest: s.manifestBytes.byteLength,
      code: s.code.byteLength,
      sourceMap: s.sourceMap?.byteLength ?? 0,
      signature: s.signature?.length ?? 0,
    },
    signed: s.signature !== undefined,
    verification: { ok: false, code: 'SIGNATURE_INVALID', reason: 'unsigned' },
  };
  if (s.signature !== undefined) {
    try {
      const jws = parseCompactJws(s.signature);
      out.signerId = computeSignerId(jws.spki);
      if ('x5c' in jws.header) out.certificateChain = [...jws.header.x5c];
      // Intact and signed by the key it names; whether that key is trusted is not inspect's question.
      verifyBundle(bytes, { trustedSigners: [out.signerId] });
      out.verification = { ok: true };
    } catch (e) {
      const err = e as EnclaveEdgeError;
      out.verification = { ok: false, code: err.code, reason: err.message };
    }
  }
  return out;
}
