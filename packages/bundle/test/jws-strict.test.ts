import { describe, expect, it } from 'vitest';
import { sign as nodeSign, verify as nodeVerify, createPublicKey } from 'node:crypto';
import { attachSignature, toLowS, decodeBundle, digestBundle, encodeBundle, generateSigningKey, jwkFromSpki, pemSigner, signBundle, verifyBundle } from '@enclave-edge/bundle';
import { refusal, sampleManifest, tinyCode } from './fixtures.js';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const sOf = (raw: Uint8Array) => BigInt('0x' + Buffer.from(raw.subarray(32)).toString('hex'));
const withS = (raw: Uint8Array, s: bigint) => Buffer.concat([Buffer.from(raw.subarray(0, 32)), Buffer.from(s.toString(16).padStart(64, '0'), 'hex')]);

async function signed() {
  const key = generateSigningKey();
  const bundle = await signBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }), pemSigner(key.privateKeyPem));
  return { key, bundle, s: decodeBundle(bundle) };
}

/** A bundle whose JWS has `headerText` as its protected header, correctly signed by `key` over it. */
function withHeaderText(key: { privateKeyPem: string }, s: ReturnType<typeof decodeBundle>, headerText: string): Uint8Array {
  const payloadB64 = s.signature!.split('.')[1]!;
  const input = Buffer.from(headerText).toString('base64url') + '.' + payloadB64;
  const sig = toLowS(nodeSign('sha256', Buffer.from(input), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' }));
  return encodeBundle({ manifest: s.manifest, code: s.code, signature: input + '.' + Buffer.from(sig).toString('base64url') });
}

describe('the JWS protected header is parsed strictly', () => {
  it('refuses a duplicate alg ("none" then "ES256") even when the signature over it is valid', async () => {
    const { key, s } = await signed();
    const jwk = JSON.stringify(jwkFromSpki(key.spki), ['crv', 'kty', 'x', 'y']);
    const dup = `{"alg":"none","alg":"ES256","jwk":${jwk},"typ":"enclave-edge-ta+jws"}`;
    expect(JSON.parse(dup).alg).toBe('ES256'); // what a lenient parser would see
    expect(refusal(withHeaderText(key, s, dup))).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/not in canonical form/) });
  });

  it('refuses the same members in another order or with whitespace: only the canonical text is admitted', async () => {
    const { key, s } = await signed();
    const jwk = jwkFromSpki(key.spki);
    const canonical = `{"alg":"ES256","jwk":${JSON.stringify(jwk, ['crv', 'kty', 'x', 'y'])},"typ":"enclave-edge-ta+jws"}`;
    expect(verifyBundle(withHeaderText(key, s, canonical), { trustedSigners: [key.signerId] }).signerSpki).toEqual(key.spki);
    for (const variant of [
      `{"typ":"enclave-edge-ta+jws","alg":"ES256","jwk":${JSON.stringify(jwk, ['crv', 'kty', 'x', 'y'])}}`,
      canonical.replace('"alg":', '"alg": '),
      canonical.replace('"ES256"', '"\\u0045S256"'),
      canonical + ' ',
    ]) {
      expect(refusal(withHeaderText(key, s, variant)), variant).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/not in canonical form/) });
    }
  });
});

describe('ES256 signatures must be low-S', () => {
  it('refuses the (r, n−s) twin of a valid signature, though plain ECDSA accepts it', async () => {
    const { key, bundle, s } = await signed();
    const [h, p, sigB64] = s.signature!.split('.') as [string, string, string];
    const raw = Buffer.from(sigB64, 'base64url');
    expect(sOf(raw) <= N / 2n).toBe(true);
    const twin = withS(raw, N - sOf(raw));
    const pub = createPublicKey(key.publicKeyPem);
    expect(nodeVerify('sha256', Buffer.from(`${h}.${p}`), { key: pub, dsaEncoding: 'ieee-p1363' }, twin)).toBe(true);
    const forged = encodeBundle({ manifest: s.manifest, code: s.code, signature: `${h}.${p}.${twin.toString('base64url')}` });
    expect(refusal(forged)).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/not low-S/) });
    expect(verifyBundle(bundle, { trustedSigners: [key.signerId] }).measurement).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signing normalises: a high-S signature handed to attachSignature is attached in its low-S form', async () => {
    const { key, bundle } = await signed();
    const d = digestBundle(bundle, { spki: key.spki });
    let raw = nodeSign('sha256', Buffer.from(d.signingInput), { key: key.privateKeyPem, dsaEncoding: 'ieee-p1363' });
    if (sOf(raw) <= N / 2n) raw = withS(raw, N - sOf(raw));
    const attached = attachSignature(bundle, raw, { spki: key.spki });
    const sig = Buffer.from(decodeBundle(attached).signature!.split('.')[2]!, 'base64url');
    expect(sOf(sig)).toBe(N - sOf(raw));
    expect(verifyBundle(attached, { trustedSigners: [key.signerId] }).signerSpki).toEqual(key.spki);
  });

  it('every signBundle output is low-S (OpenSSL alone gives high-S about half the time)', async () => {
    const key = generateSigningKey();
    const signer = pemSigner(key.privateKeyPem);
    for (let i = 0; i < 24; i++) {
      const b = await signBundle(encodeBundle({ manifest: sampleManifest({ version: `1.0.${i}` }), code: tinyCode }), signer);
      expect(sOf(Buffer.from(decodeBundle(b).signature!.split('.')[2]!, 'base64url')) <= N / 2n).toBe(true);
      verifyBundle(b, { trustedSigners: [key.signerId] });
    }
  });
});
