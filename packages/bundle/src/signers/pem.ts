/** Software keys in PEM files (development and CI; production keys belong in an HSM). */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { Signer } from './signer.js';
import { computeSignerId } from '../measurement.js';

export interface GeneratedKey {
  /** PKCS#8 PEM private key. Secret: write it with mode 0600 and never log it. */
  privateKeyPem: string;
  publicKeyPem: string;
  spki: Uint8Array;
  signerId: string;
}

export function generateSigningKey(): GeneratedKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }));
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    spki,
    signerId: computeSignerId(spki),
  };
}

function loadP256PrivateKey(pem: string | Uint8Array): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pem), format: 'pem' });
  } catch {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'signing key is not a readable PEM private key (encrypted keys are not supported)');
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'signing key must be an EC P-256 key (ES256)');
  }
  return key;
}

/** A Signer backed by a PEM private key (PKCS#8 or SEC1). */
export function pemSigner(pem: string | Uint8Array, certificateChain?: string[]): Signer {
  const key = loadP256PrivateKey(pem);
  const spki = new Uint8Array(createPublicKey(key).export({ format: 'der', type: 'spki' }));
  const signer: Signer = {
    alg: 'ES256',
    spki,
    async sign(data) {
      return new Uint8Array(cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
    },
  };
  if (certificateChain?.length) signer.certificateChain = certificateChain;
  return signer;
}

/** SPKI DER of a PEM public key, a PEM certificate, or a PEM private key. */
export function spkiFromPem(pem: string): Uint8Array {
  try {
    return new Uint8Array(createPublicKey({ key: pem, format: 'pem' }).export({ format: 'der', type: 'spki' }));
  } catch {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'not a PEM public key, certificate or private key');
  }
}

/** The certificates in a PEM file, as base64 DER (x5c form), in file order (leaf first). */
export function certificateChainFromPem(pem: string): string[] {
  const out: string[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(m[1]!.replace(/\s+/g, ''));
  if (!out.length) throw new EnclaveEdgeError('BAD_PARAMETERS', 'no PEM certificate found');
  return out;
}
