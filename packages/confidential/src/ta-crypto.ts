/**
 * The AEAD and HPKE calls of a TA's `ctx.crypto`, one implementation for the enclave worker and
 * the unit-test context. Which library each call uses, and why:
 *  - AES-256-GCM: node:crypto (OpenSSL, AES-NI): the worker has it, and it is the fastest here.
 *  - XChaCha20-Poly1305: @noble/ciphers (audited, pure JS): node:crypto has no XChaCha20, and pure
 *    JS also runs where no node:crypto exists (a Compartment, another host).
 *  - HPKE: @hpke/core, the suite of confidential calls (suite.ts).
 */
import { createCipheriv, createDecipheriv, generateKeyPairSync } from 'node:crypto';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { hpkeSuite, publicJwkOf, parseX25519PublicJwk, importHpkePublicKey, type HpkePublicJwk } from './suite.js';

export type AeadAlgorithm = 'A256GCM' | 'XC20P';

const NONCE_BYTES: Record<AeadAlgorithm, number> = { A256GCM: 12, XC20P: 24 };
const TAG = 16;

function check(alg: unknown, key: Uint8Array, nonce: Uint8Array): AeadAlgorithm {
  if (alg !== 'A256GCM' && alg !== 'XC20P') throw new EnclaveEdgeError('NOT_SUPPORTED', `AEAD "${String(alg)}" is not supported (A256GCM or XC20P)`);
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new EnclaveEdgeError('BAD_PARAMETERS', `${alg} needs a 32-byte key`);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES[alg]) throw new EnclaveEdgeError('BAD_PARAMETERS', `${alg} needs a ${NONCE_BYTES[alg]}-byte nonce`);
  return alg;
}

/** ciphertext ‖ 16-byte tag. */
export function aeadSeal(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  if (check(alg, key, nonce) === 'XC20P') return xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Throws SEAL_INTEGRITY for a wrong key, nonce, AAD or any changed byte. */
export function aeadOpen(alg: AeadAlgorithm, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Uint8Array {
  const a = check(alg, key, nonce);
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < TAG) throw new EnclaveEdgeError('SEAL_INTEGRITY', `${alg}: the ciphertext is shorter than its tag`);
  try {
    if (a === 'XC20P') return xchacha20poly1305(key, nonce, aad).decrypt(ciphertext);
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    if (aad) d.setAAD(aad);
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG));
    return new Uint8Array(Buffer.concat([d.update(ciphertext.subarray(0, ciphertext.length - TAG)), d.final()]));
  } catch {
    throw new EnclaveEdgeError('SEAL_INTEGRITY', `${alg}: the ciphertext does not open (wrong key, nonce or AAD, or changed)`);
  }
}

/** A fresh X25519 pair for HPKE: the raw 32-byte private key, the public key as an OKP JWK. */
export function x25519KeyPair(): { privateKey: Uint8Array; publicKey: HpkePublicJwk } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = Buffer.from(String(privateKey.export({ format: 'jwk' }).d), 'base64url');
  const x = Buffer.from(String(publicKey.export({ format: 'jwk' }).x), 'base64url');
  return { privateKey: new Uint8Array(d), publicKey: publicJwkOf(new Uint8Array(x)) };
}

export interface HpkeOptions {
  info?: Uint8Array;
  aad?: Uint8Array;
}

/** A fresh ArrayBuffer of exactly these bytes (a Buffer's slice() would be a view of its pool). */
const ab = (u: Uint8Array | undefined) => (u ? new Uint8Array(u).buffer : new ArrayBuffer(0));

/** HPKE base mode, single shot, to an X25519 recipient (OKP JWK). */
export async function hpkeSeal(recipient: unknown, plaintext: Uint8Array, o: HpkeOptions = {}): Promise<{ enc: Uint8Array; ciphertext: Uint8Array }> {
  const raw = parseX25519PublicJwk(recipient, 'hpkeSeal: the recipient key');
  const r = await hpkeSuite().seal({ recipientPublicKey: await importHpkePublicKey(raw), info: ab(o.info) }, ab(plaintext), ab(o.aad));
  return { enc: new Uint8Array(r.enc), ciphertext: new Uint8Array(r.ct) };
}

export async function hpkeOpen(privateKey: Uint8Array, enc: Uint8Array, ciphertext: Uint8Array, o: HpkeOptions = {}): Promise<Uint8Array> {
  if (!(privateKey instanceof Uint8Array) || privateKey.length !== 32) throw new EnclaveEdgeError('BAD_PARAMETERS', 'hpkeOpen: the private key is 32 raw X25519 bytes');
  try {
    const s = hpkeSuite();
    return new Uint8Array(await s.open({ recipientKey: await s.kem.deserializePrivateKey(ab(privateKey)), enc: ab(enc), info: ab(o.info) }, ab(ciphertext), ab(o.aad)));
  } catch {
    throw new EnclaveEdgeError('SEAL_INTEGRITY', 'hpkeOpen: the ciphertext does not open with this key (wrong key, info or AAD, or changed)');
  }
}
