/**
 * The one HPKE suite of confidential calls (RFC 9180, base mode):
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, from @hpke/core (its X25519, KDF and AEAD
 * steps on node:crypto: node-x25519.ts, native-primitives.ts). Keys travel as
 * raw 32-byte X25519 values; the public key as an OKP JWK in the evidence (`cnf.jwk`).
 */
import { CipherSuite } from '@hpke/core';
import { NodeDhkemX25519HkdfSha256 } from './node-x25519.js';
import { NodeAes256Gcm, NodeHkdfSha256 } from './native-primitives.js';
import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject, type webcrypto } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** A WebCrypto key as @hpke/core takes it. */
export type HpkeKey = webcrypto.CryptoKey;

export const SUITE_IDS = Object.freeze({ kem: 0x0020, kdf: 0x0001, aead: 0x0002 });
export const SUITE_NAME = 'DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM';

let suite: CipherSuite | undefined;
export function hpkeSuite(): CipherSuite {
  return (suite ??= new CipherSuite({ kem: new NodeDhkemX25519HkdfSha256(), kdf: new NodeHkdfSha256(), aead: new NodeAes256Gcm() }));
}

/** What every clear header sealed with this suite starts with: version, suite ids, and the TA (name, measurement). */
export interface SuiteHeader {
  v: 1;
  kem: number;
  kdf: number;
  aead: number;
  ta: string;
  m: string;
}

/** The public half as evidence carries it (RFC 8037 OKP JWK). */
export interface HpkePublicJwk {
  kty: 'OKP';
  crv: 'X25519';
  x: string;
  use?: 'enc';
}

export function publicJwkOf(raw: Uint8Array): HpkePublicJwk {
  if (raw.length !== 32) throw new EnclaveEdgeError('BAD_FORMAT', 'an X25519 public key is 32 bytes');
  return { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url'), use: 'enc' };
}

export type RecipientKeyRefusal = 'not-a-jwk' | 'private' | 'suite' | 'length' | 'fields' | 'weak';

/**
 * The one rule for an X25519 public key given as a JWK (evidence `cnf.jwk`, `ctx.crypto.hpkeSeal`
 * recipients, a pipeline's `recipient`): exactly `{kty:"OKP", crv:"X25519", x}` (+ `use:"enc"`,
 * `kid`), x the canonical base64url of 32 bytes, not a small-order point (its shared secret would
 * be all zeros). Throws BAD_PARAMETERS "<what> refused (<reason>)"; never echoes key material.
 */
export function parseX25519PublicJwk(jwk: unknown, what = 'recipient key'): Uint8Array {
  const refuse = (reason: RecipientKeyRefusal, message: string): never => {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `${what} refused (${reason}): ${message}`, { detail: { reason } });
  };
  if (!jwk || typeof jwk !== 'object' || Array.isArray(jwk)) return refuse('not-a-jwk', 'expected a JWK object {"kty":"OKP","crv":"X25519","x":"<43 base64url chars>"}');
  const j = jwk as Record<string, unknown>;
  if (Object.hasOwn(j, 'd')) return refuse('private', 'this is a private key; give only the public half (drop "d")');
  if (j.kty !== 'OKP' || j.crv !== 'X25519') return refuse('suite', `only X25519 keys (HPKE ${SUITE_NAME}): kty must be "OKP" and crv "X25519"`);
  const x = j.x;
  const raw = typeof x === 'string' && /^[A-Za-z0-9_-]{43}$/.test(x) ? Buffer.from(x, 'base64url') : undefined;
  if (!raw || raw.length !== 32 || raw.toString('base64url') !== x) return refuse('length', 'x must be the unpadded base64url of exactly 32 bytes');
  for (const k of Object.keys(j)) {
    if (k !== 'kty' && k !== 'crv' && k !== 'x' && k !== 'use' && k !== 'kid') return refuse('fields', 'only kty, crv, x, use and kid are allowed');
  }
  if (j.use !== undefined && j.use !== 'enc') return refuse('fields', 'use must be "enc"');
  if (j.kid !== undefined && (typeof j.kid !== 'string' || j.kid.length > 128)) return refuse('fields', 'kid must be a string of at most 128 characters');
  try {
    diffieHellman({ privateKey: probeKey(), publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' }) });
  } catch {
    return refuse('weak', 'a small-order X25519 point (no shared secret); not a real public key');
  }
  return new Uint8Array(raw);
}

let probe: KeyObject | undefined;
const probeKey = (): KeyObject => (probe ??= generateKeyPairSync('x25519').privateKey);

/** The raw X25519 public key of a JWK, if it is one by parseX25519PublicJwk (anything else: undefined). */
export function rawPublicKeyOf(jwk: unknown): Uint8Array | undefined {
  try {
    return parseX25519PublicJwk(jwk);
  } catch {
    return undefined;
  }
}

export interface HpkeKeyPair {
  privateKey: HpkeKey;
  publicKey: HpkeKey;
  /** 32 bytes; the enclave seals it and never lets it out in clear. */
  rawPrivate: Uint8Array;
  rawPublic: Uint8Array;
}

export async function generateHpkeKeyPair(): Promise<HpkeKeyPair> {
  const kem = hpkeSuite().kem;
  const kp = await kem.generateKeyPair();
  return {
    privateKey: kp.privateKey,
    publicKey: kp.publicKey,
    rawPrivate: new Uint8Array(await kem.serializePrivateKey(kp.privateKey)),
    rawPublic: new Uint8Array(await kem.serializePublicKey(kp.publicKey)),
  };
}

/** The pair back from its two raw halves (the enclave seals both together). */
export async function importHpkeKeyPair(rawPrivate: Uint8Array, rawPublic: Uint8Array): Promise<HpkeKeyPair> {
  if (rawPrivate.length !== 32 || rawPublic.length !== 32) throw new EnclaveEdgeError('BAD_FORMAT', 'X25519 keys are 32 bytes');
  const kem = hpkeSuite().kem;
  // Copies: the caller may wipe its buffer, and a Buffer's slice() is a view of a shared pool.
  const priv = new Uint8Array(rawPrivate);
  const pub = new Uint8Array(rawPublic);
  const privateKey = await kem.deserializePrivateKey(priv);
  const publicKey = await kem.deserializePublicKey(pub);
  return { privateKey, publicKey, rawPrivate: priv, rawPublic: pub };
}

export async function importHpkePublicKey(raw: Uint8Array): Promise<HpkeKey> {
  if (raw.length !== 32) throw new EnclaveEdgeError('BAD_FORMAT', 'an X25519 public key is 32 bytes');
  return hpkeSuite().kem.deserializePublicKey(new Uint8Array(raw));
}
