/**
 * The one HPKE suite of confidential calls (RFC 9180, base mode):
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, from @hpke/core (its KDF and AEAD steps on
 * node:crypto, native-primitives.ts). Keys travel as
 * raw 32-byte X25519 values; the public key as an OKP JWK in the evidence (`cnf.jwk`).
 */
import { CipherSuite, DhkemX25519HkdfSha256 } from '@hpke/core';
import { NodeAes256Gcm, NodeHkdfSha256 } from './native-primitives.js';
import type { webcrypto } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** A WebCrypto key as @hpke/core takes it. */
export type HpkeKey = webcrypto.CryptoKey;

export const SUITE_IDS = Object.freeze({ kem: 0x0020, kdf: 0x0001, aead: 0x0002 });
export const SUITE_NAME = 'DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM';

let suite: CipherSuite | undefined;
export function hpkeSuite(): CipherSuite {
  return (suite ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new NodeHkdfSha256(), aead: new NodeAes256Gcm() }));
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

/** The raw X25519 public key of a JWK, if it is one (anything else: undefined). */
export function rawPublicKeyOf(jwk: unknown): Uint8Array | undefined {
  if (!jwk || typeof jwk !== 'object') return undefined;
  const j = jwk as Record<string, unknown>;
  if (j.kty !== 'OKP' || j.crv !== 'X25519' || typeof j.x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(j.x)) return undefined;
  if (j.use !== undefined && j.use !== 'enc') return undefined;
  return new Uint8Array(Buffer.from(j.x, 'base64url'));
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
  const privateKey = await kem.deserializePrivateKey(rawPrivate.slice().buffer);
  const publicKey = await kem.deserializePublicKey(rawPublic.slice().buffer);
  return { privateKey, publicKey, rawPrivate, rawPublic };
}

export async function importHpkePublicKey(raw: Uint8Array): Promise<HpkeKey> {
  if (raw.length !== 32) throw new EnclaveEdgeError('BAD_FORMAT', 'an X25519 public key is 32 bytes');
  return hpkeSuite().kem.deserializePublicKey(raw.slice().buffer);
}
