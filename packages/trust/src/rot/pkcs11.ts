/**
 * `pkcs11` root of trust: the seal secret (generic secret, HMAC) and the attestation key (P-256)
 * are generated inside the token, sensitive and non-extractable. Derivation runs in the token.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { openToken, type Pkcs11Token } from '@enclave-edge/pkcs11';
import type { EvidenceSigner } from '@enclave-edge/attestation';
import { withLockFile } from '../lock.js';
import type { RootOfTrust, RotLog } from './types.js';

export const PKCS11_SEAL_LABEL = 'enclave-edge-seal-root';
export const PKCS11_ATTESTATION_LABEL = 'enclave-edge-attestation';

export interface Pkcs11RootOptions {
  stateDir: string;
  uri: string;
  modulePath?: string;
  pin?: string;
  sealKeyLabel?: string;
  attestationKeyLabel?: string;
  log?: RotLog;
}

export async function openPkcs11Root(opts: Pkcs11RootOptions): Promise<RootOfTrust> {
  const token: Pkcs11Token = await openToken({ uri: opts.uri, modulePath: opts.modulePath, pin: opts.pin });
  try {
    // Two runtimes starting at once must not both generate keys (the token would then hold two
    // keys with one label, and findKey refuses the ambiguity).
    const { seal, att } = await withLockFile(join(opts.stateDir, '.pkcs11-keygen.lock'), async () => ({
      seal: await token.getOrCreateSecretKey(opts.sealKeyLabel ?? PKCS11_SEAL_LABEL),
      att: await token.getOrCreateEcKeyPair(opts.attestationKeyLabel ?? PKCS11_ATTESTATION_LABEL),
    }));
    for (const [what, key] of [['seal secret', seal.key], ['attestation key', att.privateKey]] as const) {
      const p = await token.keyProtection(key);
      if (p.extractable || !p.sensitive) {
        throw new EnclaveEdgeError('CONFIG_INVALID', `the ${what} on token "${token.label}" is extractable or not sensitive; refusing to use it`);
      }
    }
    const spki = await token.exportEcPublicKeySpki(att.privateKey);
    const signer: EvidenceSigner = {
      spki,
      sign: (data) => token.ecdsaSignDigest(att.privateKey, createHash('sha256').update(data).digest()),
    };
    opts.log?.('info', `root of trust "pkcs11": token "${token.label}"`, { sealKeyCreated: seal.created, attestationKeyCreated: att.created });
    return {
      kind: 'pkcs11',
      developmentGrade: false,
      stateDir: opts.stateDir,
      protects:
        `Keys generated in PKCS#11 token "${token.label}", sensitive and non-extractable: the seal secret and attestation key ` +
        'cannot be copied off the device, even by root (who can still use them while the token is present and the PIN known). ' +
        'Keys derived for each TA live in the runtime\'s memory while it runs. With SoftHSM2 the "token" is a file: development only.',
      rollbackProtection:
        'None for sealed storage by itself: the token holds no monotonic counter we use, so restoring an older state directory ' +
        'restores older data. A TPM NV counter (tpm2-pkcs11 does not expose one) would be the way to more.',
      deriveKey: (info) => token.hkdfExpandSha256(seal.key, info, 32),
      attestationSigner: signer,
      close: () => token.close(),
    };
  } catch (err) {
    await token.close();
    throw err;
  }
}
