/** ECDSA P-256 signature encodings: JWS uses raw r||s (64 bytes); OpenSSL and many HSM tools emit DER. */
import { EnclaveEdgeError } from '@enclave-edge/errors';

function readDerInt(buf: Uint8Array, off: number): { value: Uint8Array; next: number } {
  if (buf[off] !== 0x02) throw new Error('expected INTEGER');
  const len = buf[off + 1]!;
  if (len > 33 || len === 0) throw new Error('bad INTEGER length');
  let value = buf.subarray(off + 2, off + 2 + len);
  if (value.byteLength !== len) throw new Error('truncated INTEGER');
  while (value.byteLength > 32 && value[0] === 0) value = value.subarray(1);
  if (value.byteLength > 32) throw new Error('INTEGER too large');
  return { value, next: off + 2 + len };
}

/** DER `SEQUENCE { INTEGER r, INTEGER s }` → 64-byte r||s. */
export function derToRawEcdsa(der: Uint8Array): Uint8Array {
  try {
    if (der[0] !== 0x30 || der[1]! >= 0x80 || der[1]! + 2 !== der.byteLength) throw new Error('expected SEQUENCE');
    const r = readDerInt(der, 2);
    const s = readDerInt(der, r.next);
    if (s.next !== der.byteLength) throw new Error('trailing bytes');
    const out = new Uint8Array(64);
    out.set(r.value, 32 - r.value.byteLength);
    out.set(s.value, 64 - s.value.byteLength);
    return out;
  } catch (e) {
    throw new EnclaveEdgeError('BAD_FORMAT', `signature is neither 64 raw bytes (r||s) nor a DER ECDSA signature: ${(e as Error).message}`);
  }
}

/** Order n of the P-256 group. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const HALF_N = P256_N >> 1n;

function scalarOf(b: Uint8Array): bigint {
  return BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));
}

/**
 * ECDSA accepts both (r, s) and (r, n−s) for one message; bundles admit only s ≤ n/2 so a signed
 * bundle has exactly one byte string. Signers' output is normalised to that form before it is attached.
 */
export function isLowS(raw: Uint8Array): boolean {
  return raw.byteLength === 64 && scalarOf(raw.subarray(32)) <= HALF_N;
}

/** The low-S form of a raw r||s signature (unchanged when it already is). */
export function toLowS(raw: Uint8Array): Uint8Array {
  const s = scalarOf(raw.subarray(32));
  if (s <= HALF_N || s >= P256_N) return raw;
  const out = new Uint8Array(64);
  out.set(raw.subarray(0, 32), 0);
  out.set(Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex'), 32);
  return out;
}

/** Accept raw r||s or DER, as bytes or as base64 / base64url / hex text (trailing newline allowed). */
export function normalizeEcdsaSignature(input: Uint8Array): Uint8Array {
  if (input.byteLength === 64) return input;
  if (input[0] === 0x30 && input.byteLength >= 8 && input.byteLength <= 72) return derToRawEcdsa(input);
  const text = Buffer.from(input).toString('latin1').trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) bytes = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) bytes = Buffer.from(text, text.includes('+') || text.includes('/') ? 'base64' : 'base64url');
  if (!bytes || bytes.byteLength === input.byteLength) {
    throw new EnclaveEdgeError('BAD_FORMAT', `signature is ${input.byteLength} bytes: expected 64 raw bytes, DER, or base64/hex text of either`);
  }
  if (bytes.byteLength === 64) return new Uint8Array(bytes);
  return derToRawEcdsa(bytes);
}
