/** What signs evidence: anything that makes an ES256 signature over bytes (software key, PKCS#11 token). */
import { createPrivateKey, createPublicKey, sign as nodeSign, type KeyObject } from 'node:crypto';

export interface EvidenceSigner {
  /** SPKI DER of the P-256 public key (the leaf certificate's key). */
  readonly spki: Uint8Array;
  /** ES256: ECDSA P-256 over SHA-256(data), raw r||s (64 bytes). */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A signer over a Node private key (PKCS#8 DER or PEM, or a KeyObject). */
export function nodeKeySigner(privateKey: KeyObject | Uint8Array | string): EvidenceSigner {
  const key = privateKey instanceof Uint8Array
    ? createPrivateKey({ key: Buffer.from(privateKey), format: 'der', type: 'pkcs8' })
    : typeof privateKey === 'string' ? createPrivateKey(privateKey) : privateKey;
  const spki = new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  return {
    spki,
    async sign(data) {
      return new Uint8Array(nodeSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
    },
  };
}
