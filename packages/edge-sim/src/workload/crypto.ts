/**
 * The workload API's cryptography: HMAC-SHA256 signing with the module key, and AES-256-GCM
 * encrypt/decrypt under a key derived (HKDF-SHA256) from the master secret, the module id and
 * the generation id — so a ciphertext made for one module or generation never opens for another.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const FORMAT_V1 = 1;
const NONCE_LEN = 12;
const TAG_LEN = 16;
const SALT = Buffer.from('enclave-edge/workload-api/encrypt/v1');

export function hmacSign(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function deriveModuleKey(masterSecret: Buffer, moduleId: string, generationId: string): Buffer {
  const info = Buffer.from(JSON.stringify([moduleId, generationId]));
  return Buffer.from(hkdfSync('sha256', masterSecret, SALT, info, 32));
}

/**
 * Output: version(1) ‖ nonce(12) ‖ tag(16) ‖ ciphertext. The nonce is random for every call
 * (never the caller's IV: callers may reuse IVs, and GCM must not); the caller's
 * initializationVector is bound as additional data, so decrypt needs the same one.
 */
export function aeadEncrypt(key: Buffer, plaintext: Buffer, iv: Buffer): Buffer {
  const nonce = randomBytes(NONCE_LEN);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(iv);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return Buffer.concat([Buffer.from([FORMAT_V1]), nonce, c.getAuthTag(), ct]);
}

/** Throws when the blob is malformed, was made for another module/generation/IV, or was altered. */
export function aeadDecrypt(key: Buffer, blob: Buffer, iv: Buffer): Buffer {
  if (blob.length < 1 + NONCE_LEN + TAG_LEN || blob[0] !== FORMAT_V1) throw new Error('ciphertext is not in the expected format');
  const nonce = blob.subarray(1, 1 + NONCE_LEN);
  const tag = blob.subarray(1 + NONCE_LEN, 1 + NONCE_LEN + TAG_LEN);
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAAD(iv);
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(blob.subarray(1 + NONCE_LEN + TAG_LEN)), d.final()]);
  } catch {
    throw new Error('ciphertext does not decrypt for this module, generation and initialization vector');
  }
}
