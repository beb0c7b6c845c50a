/**
 * A Signer whose private key lives in a PKCS#11 token (HSM, secure element, TPM via
 * tpm2-pkcs11, SoftHSM2 in tests). The SHA-256 digest is computed here and only the digest
 * goes to the token (CKM_ECDSA); the private key never leaves it. Imported from
 * `@enclave-edge/bundle/signers/pkcs11` so that verifying bundles never loads the native module.
 */
import { createHash } from 'node:crypto';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { openToken, parsePkcs11Uri, type Pkcs11Token } from '@enclave-edge/pkcs11';
import type { Signer } from './signer.js';
import { computeSignerId } from '../measurement.js';

export interface Pkcs11Signer extends Signer {
  readonly tokenLabel: string;
  /** Close the token session (the signer is unusable afterwards). */
  close(): Promise<void>;
}

export interface Pkcs11SignerOptions {
  pin?: string;
  modulePath?: string;
  certificateChain?: string[];
}

function open(uri: string, o: Pkcs11SignerOptions): Promise<Pkcs11Token> {
  return openToken({ uri, ...(o.pin !== undefined ? { pin: o.pin } : {}), ...(o.modulePath !== undefined ? { modulePath: o.modulePath } : {}) });
}

/** Open the private key named by an RFC 7512 URI (`pkcs11:token=…;object=…`, PIN via pin-source / pin-value / PKCS11_PIN). */
export async function openPkcs11Signer(uri: string, options: Pkcs11SignerOptions = {}): Promise<Pkcs11Signer> {
  const token = await open(uri, options);
  try {
    const key = await token.findKeyFromUri(uri);
    if (key.class !== 'private') throw new EnclaveEdgeError('BAD_PARAMETERS', 'the PKCS#11 URI must name a private key (type=private)');
    const spki = await token.exportEcPublicKeySpki(key);
    const signer: Pkcs11Signer = {
      alg: 'ES256',
      spki,
      tokenLabel: token.label,
      async sign(data) {
        return token.ecdsaSignDigest(key, createHash('sha256').update(data).digest());
      },
      close: () => token.close(),
    };
    if (options.certificateChain?.length) signer.certificateChain = options.certificateChain;
    return signer;
  } catch (e) {
    await token.close();
    throw e;
  }
}

/** Generate a non-extractable P-256 signing key in the token, labelled by the URI's `object`. */
export async function generatePkcs11SigningKey(uri: string, options: Omit<Pkcs11SignerOptions, 'certificateChain'> = {}): Promise<{ spki: Uint8Array; signerId: string; label: string; tokenLabel: string }> {
  const label = parsePkcs11Uri(uri).object;
  if (!label) throw new EnclaveEdgeError('BAD_PARAMETERS', 'the PKCS#11 URI must name the new key with object=<label>');
  const token = await open(uri, options);
  try {
    if (await token.findKey({ class: 'private', label })) throw new EnclaveEdgeError('CONFLICT', `a private key labelled "${label}" already exists on token "${token.label}"`);
    const { privateKey } = await token.generateEcKeyPair({ label });
    const spki = await token.exportEcPublicKeySpki(privateKey);
    return { spki, signerId: computeSignerId(spki), label, tokenLabel: token.label };
  } finally {
    await token.close();
  }
}
