/**
 * The one nonce codec of every layer (ta-runtime, the enclave trust bridge, evidence issue and
 * verify): the same accepted forms and the same error everywhere. A nonce is 8..55 bytes, given
 * as bytes, as hex (even length) or as base64url (RFC 4648 §5, padding optional). In evidence it is
 * carried as RFC 9711 §4.1's JSON `eat_nonce`: a text string of 10..74 bytes, here the unpadded
 * base64url of the nonce (11..74 characters), so a relying party that sends unpadded base64url finds
 * exactly its own text there. 55 bytes is the most whose base64url fits in 74 characters.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export const NONCE_MIN = 8;
export const NONCE_MAX = 55;

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const B64URL_PADDED = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)$/;

function refuse(why: string): never {
  throw new EnclaveEdgeError('BAD_PARAMETERS', `nonce must be ${NONCE_MIN}..${NONCE_MAX} bytes: a Uint8Array, hex, or base64url (padding optional); ${why}`);
}

export function decodeNonce(nonce: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (nonce instanceof Uint8Array) bytes = new Uint8Array(nonce);
  else if (typeof nonce !== 'string') refuse(`got ${nonce === null ? 'null' : typeof nonce}`);
  else if (HEX.test(nonce)) bytes = new Uint8Array(Buffer.from(nonce, 'hex'));
  else if (B64URL.test(nonce) || B64URL_PADDED.test(nonce)) bytes = new Uint8Array(Buffer.from(nonce, 'base64url'));
  else refuse('the text is neither hex nor base64url');
  if (bytes.length < NONCE_MIN || bytes.length > NONCE_MAX) refuse(`got ${bytes.length} bytes`);
  return bytes;
}

/** The nonce as `eat_nonce` carries it (RFC 9711 §4.1, JSON: a text string of 10..74 bytes): unpadded base64url. */
export function encodeNonce(nonce: unknown): string {
  return Buffer.from(decodeNonce(nonce)).toString('base64url');
}
