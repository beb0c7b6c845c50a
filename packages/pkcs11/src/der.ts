/** The few DER shapes we need for P-256: SPKI and the EC point PKCS#11 returns. */
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** DER of the namedCurve OID prime256v1 (CKA_EC_PARAMS). */
export const P256_EC_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
/** SPKI header for an uncompressed P-256 point (id-ecPublicKey + prime256v1, BIT STRING of 66 bytes). */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** CKA_EC_POINT is usually a DER OCTET STRING around 04||X||Y; some tokens return the raw point. */
export function ecPointToRaw(ecPoint: Uint8Array): Buffer {
  const b = Buffer.from(ecPoint);
  if (b.length === 65 && b[0] === 0x04) return b;
  if (b.length === 67 && b[0] === 0x04 && b[1] === 0x41 && b[2] === 0x04) return b.subarray(2);
  throw new EnclaveEdgeError('NOT_SUPPORTED', `unsupported EC point encoding (${b.length} bytes); only uncompressed P-256 is supported`);
}

export function p256SpkiFromRawPoint(point: Uint8Array): Buffer {
  if (point.length !== 65 || point[0] !== 0x04) throw new EnclaveEdgeError('BAD_FORMAT', 'expected an uncompressed P-256 point (65 bytes)');
  return Buffer.concat([P256_SPKI_PREFIX, point]);
}
