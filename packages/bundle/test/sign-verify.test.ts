import { describe, expect, it } from 'vitest';
import { createHash, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import * as jose from 'jose';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  attachSignature, computeMeasurement, canonicalManifestBytes, decodeBundle, digestBundle, encodeBundle, generateSigningKey,
  inspectBundle, pemSigner, signBundle, spkiFromPem, verifyBundle, verifyBundleAsync, certificateChainFromPem, computeSignerId,
} from '@enclave-edge/bundle';
import { sampleManifest, tinyCode } from './fixtures.js';

async function signed(manifest = sampleManifest(), code = tinyCode) {
  const key = generateSigningKey();
  const bundle = await signBundle(encodeBundle({ manifest, code }), pemSigner(key.privateKeyPem));
  return { key, bundle };
}

function jwsOf(bundle: Uint8Array): string {
  return decodeBundle(bundle).signature!;
}

/** A self-signed P-256 certificate made by the openssl CLI, as a signing service would hand out. */
function selfSignedCert(): { keyPem: string; certPem: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ee-cert-'));
  try {
    const key = generateSigningKey();
    writeFileSync(join(dir, 'key.pem'), key.privateKeyPem, { mode: 0o600 });
    execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-subj', '/CN=enclave-edge test signer', '-days', '1', '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
    return { keyPem: key.privateKeyPem, certPem: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('signing and verification', () => {
  it('signs, verifies, and reports measurement and signer_id as hex', async () => {
    const { key, bundle } = await signed();
    const v = verifyBundle(bundle, { trustedSigners: [key.signerId] });
    expect(v.measurement).toBe(computeMeasurement(canonicalManifestBytes(sampleManifest()), tinyCode));
    expect(v.measurement).toMatch(/^[0-9a-f]{64}$/);
    expect(v.signerId).toBe(key.signerId);
    expect(v.signerId).toBe(createHash('sha256').update(key.spki).digest('hex'));
    expect(new TextDecoder().decode(v.code)).toBe(new TextDecoder().decode(tinyCode));
    expect(v.size).toBe(bundle.byteLength);
    expect(v.manifest).toEqual(sampleManifest());
  });

  it('any change to manifest or code changes the measurement', () => {
    const base = computeMeasurement(canonicalManifestBytes(sampleManifest()), tinyCode);
    expect(computeMeasurement(canonicalManifestBytes(sampleManifest({ securityVersion: 2 })), tinyCode)).not.toBe(base);
    expect(computeMeasurement(canonicalManifestBytes(sampleManifest()), new TextEncoder().encode('module.exports={commands:{}} '))).not.toBe(base);
  });

  it('the signature verifies with plain jose and the key from the JWS header', async () => {
    const { key, bundle } = await signed();
    const { payload, protectedHeader } = await jose.compactVerify(jwsOf(bundle), jose.EmbeddedJWK);
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'enclave-edge-ta+jws' });
    const body = JSON.parse(new TextDecoder().decode(payload));
    expect(body.measurement).toBe(verifyBundle(bundle, { trustedSigners: [key.signerId] }).measurement);
    expect(body.manifest).toEqual(sampleManifest());
  });

  it('signs with an x5c certificate chain that jose verifies via importX509', async () => {
    const { keyPem, certPem } = selfSignedCert();
    const chain = certificateChainFromPem(certPem);
    const bundle = await signBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }), pemSigner(keyPem, chain));
    const v = verifyBundle(bundle, { trustedSigners: [computeSignerId(spkiFromPem(certPem))] });
    expect(v.certificateChain).toEqual(chain);
    expect(v.signerId).toBe(computeSignerId(spkiFromPem(certPem)));
    const header = jose.decodeProtectedHeader(jwsOf(bundle));
    const key = await jose.importX509(`-----BEGIN CERTIFICATE-----\n${header.x5c![0]}\n-----END CERTIFICATE-----`, 'ES256');
    await expect(jose.compactVerify(jwsOf(bundle), key)).resolves.toBeTruthy();
  });

  it('refuses a certificate that does not hold the signing key', async () => {
    const { certPem } = selfSignedCert();
    const other = generateSigningKey();
    await expect(signBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }), pemSigner(other.privateKeyPem, certificateChainFromPem(certPem)))).rejects.toThrow(/certificate does not hold the signing key/);
  });

  it('offline signing: digest out, DER signature in (as openssl dgst -sha256 -sign makes), attach, verify', () => {
    const key = generateSigningKey();
    const unsigned = encodeBundle({ manifest: sampleManifest(), code: tinyCode });
    const d = digestBundle(unsigned, { spki: key.spki });
    expect(d.sha256).toBe(createHash('sha256').update(d.signingInput).digest('hex'));
    const der = nodeSign('sha256', Buffer.from(d.signingInput), key.privateKeyPem); // DER by default
    const bundle = attachSignature(unsigned, der, { spki: key.spki });
    expect(verifyBundle(bundle, { trustedSigners: [key.signerId] }).signerId).toBe(key.signerId);
    // base64 text of the DER signature is accepted too
    expect(verifyBundle(attachSignature(unsigned, Buffer.from(der.toString('base64') + '\n'), { spki: key.spki }), { trustedSigners: [key.signerId] }).measurement).toBe(d.measurement);
  });

  it('attach-signature refuses a signature from another key or over another digest', () => {
    const key = generateSigningKey();
    const other = generateSigningKey();
    const unsigned = encodeBundle({ manifest: sampleManifest(), code: tinyCode });
    const d = digestBundle(unsigned, { spki: key.spki });
    const byOther = nodeSign('sha256', Buffer.from(d.signingInput), { key: other.privateKeyPem, dsaEncoding: 'ieee-p1363' });
    expect(() => attachSignature(unsigned, byOther, { spki: key.spki })).toThrow(/does not verify/);
    const wrongDigest = nodeSign('sha256', Buffer.from('something else'), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' });
    expect(() => attachSignature(unsigned, wrongDigest, { spki: key.spki })).toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
    expect(() => attachSignature(unsigned, new Uint8Array(10), { spki: key.spki })).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
  });

  it('trusted signers are required: another signer, an empty list or none at all is a POLICY_VIOLATION', async () => {
    const { key, bundle } = await signed(sampleManifest({ debug: true }));
    expect(verifyBundle(bundle, { trustedSigners: [key.signerId.toUpperCase()] }).signerId).toBe(key.signerId);
    expect(() => verifyBundle(bundle, { trustedSigners: [generateSigningKey().signerId] })).toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/not one of the trusted signers/) }));
    expect(() => verifyBundle(bundle, { trustedSigners: [] })).toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION' }));
    // A caller that skips the type checker still gets no "any signer" default.
    expect(() => (verifyBundle as (b: Uint8Array) => unknown)(bundle)).toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION' }));
    await expect((verifyBundleAsync as (b: Uint8Array) => Promise<unknown>)(bundle)).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
  });

  it('debug bundles carry a source map covered by the signature', async () => {
    const map = new TextEncoder().encode('{"version":3,"sources":["src/index.ts"],"mappings":""}');
    const key = generateSigningKey();
    const bundle = await signBundle(encodeBundle({ manifest: sampleManifest({ debug: true }), code: tinyCode, sourceMap: map }), pemSigner(key.privateKeyPem));
    const trust = { trustedSigners: [key.signerId] };
    expect(new TextDecoder().decode(verifyBundle(bundle, trust).sourceMap)).toContain('src/index.ts');
    const tampered = bundle.slice();
    const at = Buffer.from(tampered).indexOf('src/index.ts');
    tampered[at] = 'x'.charCodeAt(0);
    expect(() => verifyBundle(tampered, trust)).toThrow(expect.objectContaining({ code: 'MEASUREMENT_MISMATCH', message: expect.stringMatching(/source map/) }));
    expect(() => encodeBundle({ manifest: sampleManifest(), code: tinyCode, sourceMap: map })).not.toThrow();
    expect(() => decodeBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode, sourceMap: map }))).toThrow(/release .* must not carry a source map/);
  });

  it('inspect describes signed and unsigned bundles without throwing on a bad signature', async () => {
    const { key, bundle } = await signed();
    const i = inspectBundle(bundle);
    expect(i).toMatchObject({ signed: true, signerId: key.signerId, verification: { ok: true } });
    expect(i.sizes.total).toBe(bundle.byteLength);
    const u = inspectBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }));
    expect(u).toMatchObject({ signed: false, verification: { ok: false, reason: 'unsigned' } });
  });

  it('pemSigner refuses non-P-256 keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(() => pemSigner(rsa)).toThrow(/EC P-256/);
    expect(() => pemSigner('garbage')).toThrow(/not a readable PEM private key/);
  });
});
