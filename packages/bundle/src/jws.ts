/**
 * The bundle signature: a compact JWS (RFC 7515), ES256, protected header
 * `{alg:"ES256", typ:"enclave-edge-ta+jws", jwk | x5c}`, payload the canonical JSON of
 * `{manifest, measurement[, sourceMapSha256]}`. Any JOSE library can check it.
 */
import { createPublicKey, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { canonicalJson } from './canonical-json.js';
import { decodeBase64urlStrict, encodeBase64url } from './base64url.js';
import { isLowS } from './ecdsa-signature.js';
import type { TAManifest } from './types.js';

export const JWS_TYP = 'enclave-edge-ta+jws';

export interface PublicJwkP256 {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

export type ProtectedHeader = { alg: 'ES256'; typ: typeof JWS_TYP; jwk: PublicJwkP256 } | { alg: 'ES256'; typ: typeof JWS_TYP; x5c: string[] };

export interface SignedPayload {
  manifest: TAManifest;
  measurement: string;
  /** SHA-256 hex of the source map section, present only when the bundle carries one. */
  sourceMapSha256?: string;
}

/** Who signs: the public key, and optionally an X.509 chain (base64 DER, leaf first) whose leaf holds that key. */
export interface SignerKeyInfo {
  spki: Uint8Array;
  certificateChain?: string[];
}

const sigErr = (what: string) => new EnclaveEdgeError('SIGNATURE_INVALID', `bundle signature: ${what}`);

export function p256KeyFromSpki(spki: Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch {
    throw new EnclaveEdgeError('BAD_FORMAT', 'public key is not a valid SPKI DER');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EnclaveEdgeError('BAD_FORMAT', 'signer key must be an EC P-256 key (ES256)');
  }
  return key;
}

export function jwkFromSpki(spki: Uint8Array): PublicJwkP256 {
  const jwk = p256KeyFromSpki(spki).export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y! };
}

export function spkiOfCertificate(b64Der: string): Uint8Array {
  try {
    const cert = new X509Certificate(Buffer.from(b64Der, 'base64'));
    return new Uint8Array(cert.publicKey.export({ format: 'der', type: 'spki' }));
  } catch {
    throw sigErr('x5c[0] is not a valid X.509 certificate');
  }
}

export function buildProtectedHeader(key: SignerKeyInfo): ProtectedHeader {
  if (key.certificateChain?.length) {
    const leaf = spkiOfCertificate(key.certificateChain[0]!);
    if (!Buffer.from(leaf).equals(Buffer.from(key.spki))) throw new EnclaveEdgeError('BAD_PARAMETERS', 'the certificate does not hold the signing key (leaf public key differs)');
    return { alg: 'ES256', typ: JWS_TYP, x5c: [...key.certificateChain] };
  }
  return { alg: 'ES256', typ: JWS_TYP, jwk: jwkFromSpki(key.spki) };
}

/** The exact ASCII bytes an ES256 signer signs (`BASE64URL(header) "." BASE64URL(payload)`). */
export function buildSigningInput(header: ProtectedHeader, payload: SignedPayload): string {
  return encodeBase64url(canonicalJson(header)) + '.' + encodeBase64url(canonicalJson(payload));
}

export interface ParsedJws {
  header: ProtectedHeader;
  headerB64: string;
  payloadB64: string;
  payloadText: string;
  signature: Buffer;
  /** The verification key and its SPKI DER, taken from the header. */
  key: KeyObject;
  spki: Uint8Array;
}

/** DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

function p256SpkiFromJwk(jwk: PublicJwkP256): Uint8Array {
  const x = decodeBase64urlStrict(jwk.x);
  const y = decodeBase64urlStrict(jwk.y);
  if (!x || !y || x.byteLength !== 32 || y.byteLength !== 32) throw sigErr('header jwk x/y must be 32-byte base64url values');
  return new Uint8Array(Buffer.concat([P256_SPKI_PREFIX, Buffer.from([4]), x, y]));
}

interface HeaderEntry {
  header: ProtectedHeader;
  key: KeyObject;
  spki: Uint8Array;
}

const headerCache = new Map<string, HeaderEntry>();

/**
 * Parsing the header and importing its key cost the most after hashing; headers are public and
 * the result depends only on their exact text, so it is cached by that text (failures are not).
 */
function headerEntry(headerB64: string): HeaderEntry {
  const hit = headerCache.get(headerB64);
  if (hit) return hit;
  const headerBytes = decodeBase64urlStrict(headerB64);
  if (!headerBytes) throw sigErr('a JWS part is not canonical base64url');
  const header = parseHeader(headerBytes.toString('utf8'));
  let key: KeyObject;
  if ('jwk' in header) {
    try {
      key = createPublicKey({ key: { ...header.jwk }, format: 'jwk' });
    } catch {
      throw sigErr('header jwk is not a valid P-256 public key');
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw sigErr('header jwk is not a P-256 key');
  } else {
    key = p256KeyFromSpki(spkiOfCertificate(header.x5c[0]!));
  }
  // Built from x and y directly: exporting the KeyObject costs as much as importing it.
  const spki = 'jwk' in header ? p256SpkiFromJwk(header.jwk) : new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  // Shared by every bundle with this header: frozen, so no caller can change what the next one sees.
  if ('jwk' in header) Object.freeze(header.jwk);
  else Object.freeze(header.x5c);
  const entry = { header: Object.freeze(header), key, spki };
  if (headerCache.size > 64) headerCache.clear();
  headerCache.set(headerB64, entry);
  return entry;
}

function parseHeader(text: string): ProtectedHeader {
  let h: unknown;
  try {
    h = JSON.parse(text);
  } catch {
    throw sigErr('protected header is not JSON');
  }
  if (!h || typeof h !== 'object' || Array.isArray(h)) throw sigErr('protected header is not an object');
  // JSON.parse keeps the last of duplicate members and ignores order and spacing; only the one
  // canonical text (which has neither duplicates nor alternatives) is accepted.
  if (canonicalJson(h) !== text) throw sigErr('protected header is not in canonical form (duplicate members, key order or whitespace)');
  const o = h as Record<string, unknown>;
  if (o.alg !== 'ES256') throw sigErr(`alg must be ES256, got ${JSON.stringify(o.alg)}`);
  if (o.typ !== JWS_TYP) throw sigErr(`typ must be ${JWS_TYP}`);
  const keys = Object.keys(o).sort().join(',');
  if (keys === 'alg,jwk,typ') {
    const j = o.jwk as Record<string, unknown> | null;
    if (!j || typeof j !== 'object' || Object.keys(j).sort().join(',') !== 'crv,kty,x,y' || j.kty !== 'EC' || j.crv !== 'P-256' || typeof j.x !== 'string' || typeof j.y !== 'string') {
      throw sigErr('header jwk must be exactly {kty:"EC", crv:"P-256", x, y}');
    }
    return o as ProtectedHeader;
  }
  if (keys === 'alg,typ,x5c') {
    const c = o.x5c;
    if (!Array.isArray(c) || c.length === 0 || c.length > 8 || !c.every((s) => typeof s === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(s))) {
      throw sigErr('header x5c must be 1..8 base64 DER certificates');
    }
    return o as ProtectedHeader;
  }
  throw sigErr(`protected header must have exactly alg, typ and one of jwk or x5c (has ${keys})`);
}

/** Structural parse of the compact JWS and its key; the signature itself is checked by `checkJwsSignature`. */
export function parseCompactJws(jws: string): ParsedJws {
  const parts = jws.split('.');
  if (parts.length !== 3) throw sigErr('not a compact JWS (expected three dot-separated parts)');
  const [headerB64, payloadB64, sigB64] = parts as [string, string, string];
  const payloadBytes = decodeBase64urlStrict(payloadB64);
  const signature = decodeBase64urlStrict(sigB64);
  if (!payloadBytes || !signature) throw sigErr('a JWS part is not canonical base64url');
  if (signature.byteLength !== 64) throw sigErr(`ES256 signature must be 64 bytes, got ${signature.byteLength}`);
  const { header, key, spki } = headerEntry(headerB64);
  if (!isLowS(signature)) throw sigErr('ES256 signature is not low-S (s must be at most n/2)');
  return { header, headerB64, payloadB64, payloadText: payloadBytes.toString('utf8'), signature, key, spki };
}

export function checkJwsSignature(p: ParsedJws): void {
  const input = Buffer.from(p.headerB64 + '.' + p.payloadB64, 'ascii');
  const ok = cryptoVerify('sha256', input, { key: p.key, dsaEncoding: 'ieee-p1363' }, p.signature);
  if (!ok) throw sigErr('ES256 signature does not verify with the public key in the header');
}

/** The same check on libuv's thread pool, so it can overlap with hashing the code. */
export function checkJwsSignatureAsync(p: ParsedJws): Promise<void> {
  const input = Buffer.from(p.headerB64 + '.' + p.payloadB64, 'ascii');
  return new Promise((resolve, reject) => {
    cryptoVerify('sha256', input, { key: p.key, dsaEncoding: 'ieee-p1363' }, p.signature, (err, ok) => {
      if (err || !ok) reject(sigErr('ES256 signature does not verify with the public key in the header'));
      else resolve();
    });
  });
}

export function verifyRawSignature(spki: Uint8Array, signingInput: string, rawSig: Uint8Array): boolean {
  return cryptoVerify('sha256', Buffer.from(signingInput, 'ascii'), { key: p256KeyFromSpki(spki), dsaEncoding: 'ieee-p1363' }, rawSig);
}
