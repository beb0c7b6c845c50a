import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsmToken, openToken, type SoftHsmToken } from '@enclave-edge/pkcs11';
import { encodeBundle, signBundle, verifyBundle } from '@enclave-edge/bundle';
import { generatePkcs11SigningKey, openPkcs11Signer } from '@enclave-edge/bundle/signers/pkcs11';
import * as jose from 'jose';
import { sampleManifest, tinyCode } from './fixtures.js';

describe('PKCS#11 signer (real SoftHSM2 token)', () => {
  let token: SoftHsmToken;
  let keyUri: string;
  beforeAll(() => {
    token = createSoftHsmToken({ label: 'ta-signing', pin: '4321' });
    keyUri = `pkcs11:token=ta-signing;object=release-key?module-path=${token.modulePath}`;
  });
  afterAll(() => {
    delete process.env.PKCS11_PIN;
    token?.dispose();
  });

  it('generates a key in the token, signs a bundle there, and the result verifies (also with jose)', async () => {
    process.env.PKCS11_PIN = '4321';
    const made = await generatePkcs11SigningKey(keyUri);
    expect(made.signerId).toMatch(/^[0-9a-f]{64}$/);
    await expect(generatePkcs11SigningKey(keyUri)).rejects.toMatchObject({ code: 'CONFLICT' });

    const signer = await openPkcs11Signer(keyUri);
    try {
      const bundle = await signBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }), signer);
      const v = verifyBundle(bundle, { trustedSigners: [made.signerId] });
      expect(v.signerId).toBe(made.signerId);
    } finally {
      await signer.close();
    }
  });

  it('the private key is non-extractable and sensitive', async () => {
    const t = await openToken({ uri: keyUri, pin: '4321' });
    try {
      const key = await t.findKeyFromUri(keyUri);
      expect(await t.keyProtection(key)).toMatchObject({ sensitive: true, extractable: false });
    } finally {
      await t.close();
    }
  });

  it('a PIN from a pin-value in the URI works; a wrong PIN is refused with a clear error', async () => {
    const s = await openPkcs11Signer(`${keyUri}&pin-value=4321`);
    await s.close();
    await expect(openPkcs11Signer(keyUri, { pin: '0000' })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/PIN_INCORRECT/) });
    await expect(openPkcs11Signer(`pkcs11:token=ta-signing;object=no-such-key?module-path=${token.modulePath}`, { pin: '4321' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
  });

  it('jose verifies a token-signed bundle with the key from the header', async () => {
    const signer = await openPkcs11Signer(keyUri, { pin: '4321' });
    try {
      const bundle = await signBundle(encodeBundle({ manifest: sampleManifest({ name: 'other' }), code: tinyCode }), signer);
      const { decodeBundle } = await import('@enclave-edge/bundle');
      const { payload } = await jose.compactVerify(decodeBundle(bundle).signature!, jose.EmbeddedJWK);
      expect(JSON.parse(new TextDecoder().decode(payload)).manifest.name).toBe('other');
    } finally {
      await signer.close();
    }
  });
});
