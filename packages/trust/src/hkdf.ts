/** HKDF-Expand (RFC 5869 §2.3) over HMAC-SHA256 with a software PRK. */
import { createHmac } from 'node:crypto';

export function hkdfExpandSha256(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1, off = 0; off < length; i++) {
    prev = createHmac('sha256', prk).update(prev).update(info).update(Uint8Array.of(i)).digest();
    out.set(prev.subarray(0, Math.min(32, length - off)), off);
    off += 32;
  }
  return out;
}
