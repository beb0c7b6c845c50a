import { EnclaveEdgeError } from '@enclave-edge/errors';

/** A verifier nonce given as hex or base64url text → 8..64 bytes. */
export function decodeNonce(text: string): Uint8Array {
  const bytes = /^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 ? Buffer.from(text, 'hex') : /^[A-Za-z0-9_-]+={0,2}$/.test(text) ? Buffer.from(text, 'base64url') : undefined;
  if (!bytes || bytes.length < 8 || bytes.length > 64) throw new EnclaveEdgeError('BAD_PARAMETERS', 'nonce must be 8..64 bytes as hex or base64url');
  return new Uint8Array(bytes);
}
