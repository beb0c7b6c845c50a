/** base64url helpers (RFC 4648 §5, no padding). Nonces: nonce.ts. */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

export function fromB64u(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new EnclaveEdgeError('BAD_FORMAT', 'not base64url');
  return new Uint8Array(Buffer.from(s, 'base64url'));
}

