/**
 * measurement = SHA-256( "enclave-edge.ta.measurement.v1" 0x00
 *                        ‖ u64be(len(manifest)) ‖ canonical manifest
 *                        ‖ u64be(len(code)) ‖ code )
 * Domain separation and length prefixes make the split between manifest and code unambiguous.
 * signer_id = SHA-256(SPKI DER of the signer's public key).
 */
import { createHash } from 'node:crypto';
import { toHex } from './hex.js';

export const MEASUREMENT_DOMAIN = 'enclave-edge.ta.measurement.v1';

function u64be(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

export function computeMeasurement(canonicalManifest: Uint8Array, code: Uint8Array): string {
  return createHash('sha256')
    .update(MEASUREMENT_DOMAIN)
    .update(new Uint8Array([0]))
    .update(u64be(canonicalManifest.byteLength))
    .update(canonicalManifest)
    .update(u64be(code.byteLength))
    .update(code)
    .digest('hex');
}

export function computeSignerId(spkiDer: Uint8Array): string {
  return toHex(createHash('sha256').update(spkiDer).digest());
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
