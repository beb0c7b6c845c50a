/** base64url and nonce helpers (RFC 4648 §5, no padding). */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function fromB64u(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new EnclaveEdgeError('BAD_FORMAT', 'not base64url');
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

export const NONCE_MIN = 8;
export const NONCE_MAX = 64;

/**
 * A verifier nonce as bytes. Strings are hex when they look like hex (even length, 0-9a-f),
 * otherwise base64url — the same rule the TA SDK documents for `attest({ nonce })`.
 */
export function nonceBytes(nonce: string | Uint8Array): Uint8Array {
  let bytes: Uint8Array;
  if (typeof nonce === 'string') {
    if (nonce.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(nonce)) bytes = new Uint8Array(Buffer.from(nonce, 'hex'));
    else if (/^[A-Za-z0-9_-]+$/.test(nonce)) bytes = fromB64u(nonce);
    else throw new EnclaveEdgeError('BAD_PARAMETERS', 'nonce must be bytes, hex or base64url');
  } else if (nonce instanceof Uint8Array) {
    bytes = nonce;
  } else {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'nonce must be bytes, hex or base64url');
  }
  if (bytes.length < NONCE_MIN || bytes.length > NONCE_MAX) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `nonce must be ${NONCE_MIN}..${NONCE_MAX} bytes, got ${bytes.length}`);
  }
  return bytes;
}
