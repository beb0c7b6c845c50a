import { describe, expect, it } from 'vitest';
import { sign as nodeSign } from 'node:crypto';
import { decodeBundle, encodeBundle, generateSigningKey, pemSigner, signBundle, verifyBundle, verifyBundleAsync, digestBundle, toLowS, TAB_HEADER_LENGTH } from '@enclave-edge/bundle';
import { KEY, TRUST, refusal, sampleManifest, tinyCode } from './fixtures.js';

const NAMED = ['BAD_FORMAT', 'MEASUREMENT_MISMATCH', 'SIGNATURE_INVALID', 'POLICY_VIOLATION'];

async function smallSignedBundle() {
  const key = KEY;
  return { key, bundle: await signBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode }), pemSigner(key.privateKeyPem)) };
}

describe('bad input is refused with a named error', () => {
  it('truncated files', async () => {
    const { bundle } = await smallSignedBundle();
    expect(refusal(bundle.subarray(0, 10))).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/truncated/) });
    expect(refusal(bundle.subarray(0, bundle.byteLength - 1))).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/truncated or section lengths lie/) });
    expect(refusal(new Uint8Array(0))).toMatchObject({ code: 'BAD_FORMAT' });
  });

  it('a manifest section that is not the canonical bytes: spaces, reordered keys, a leading BOM', () => {
    const canonical = new TextDecoder().decode(decodeBundle(encodeBundle({ manifest: sampleManifest(), code: tinyCode })).manifestBytes);
    const withManifest = (text: string) => {
      const m = Buffer.from(text, 'utf8');
      const out = new Uint8Array(TAB_HEADER_LENGTH + m.byteLength + tinyCode.byteLength);
      out.set(encodeBundle({ manifest: sampleManifest(), code: tinyCode }).subarray(0, TAB_HEADER_LENGTH));
      new DataView(out.buffer).setUint32(16, m.byteLength);
      out.set(m, TAB_HEADER_LENGTH);
      out.set(tinyCode, TAB_HEADER_LENGTH + m.byteLength);
      return out;
    };
    expect(() => decodeBundle(withManifest(canonical))).not.toThrow();
    const reordered = JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(canonical) as object).reverse()));
    for (const text of [JSON.stringify(JSON.parse(canonical), null, 1), reordered, '\uFEFF' + canonical]) {
      expect(() => decodeBundle(withManifest(text)), JSON.stringify(text.slice(0, 8))).toThrow(/not in canonical form|not valid UTF-8 JSON/);
    }
  });

  it('wrong magic', async () => {
    const { bundle } = await smallSignedBundle();
    const b = bundle.slice();
    b.set(new TextEncoder().encode('PK\x03\x04'), 0);
    expect(refusal(b)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/wrong magic/) });
  });

  it('oversized header and oversized sections', async () => {
    const { bundle } = await smallSignedBundle();
    const b = bundle.slice();
    new DataView(b.buffer).setUint16(10, 4096);
    expect(refusal(b)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/header length 4096/) });
    const c = bundle.slice();
    new DataView(c.buffer).setUint32(16, 0xffffffff);
    expect(refusal(c)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/manifest section length 4294967295 exceeds the limit/) });
  });

  it('section lengths that lie', async () => {
    const { bundle } = await smallSignedBundle();
    const longer = bundle.slice();
    const v = new DataView(longer.buffer);
    v.setUint32(20, v.getUint32(20) + 5);
    expect(refusal(longer)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/section lengths lie/) });
    const shifted = bundle.slice();
    const w = new DataView(shifted.buffer);
    w.setUint32(16, w.getUint32(16) - 3);
    w.setUint32(20, w.getUint32(20) + 3); // total still matches, manifest/code boundary moved
    expect(refusal(shifted)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/manifest section/) });
    const trailing = new Uint8Array(bundle.byteLength + 1);
    trailing.set(bundle);
    expect(refusal(trailing)).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/trailing data/) });
  });

  it('an unsigned bundle', () => {
    expect(refusal(encodeBundle({ manifest: sampleManifest(), code: tinyCode }))).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/unsigned/) });
  });

  it('a signature by another key than the one in the header', async () => {
    const { key, bundle } = await smallSignedBundle();
    const other = generateSigningKey();
    const d = digestBundle(bundle, { spki: key.spki }); // header names `key`…
    const sig = toLowS(nodeSign('sha256', Buffer.from(d.signingInput), { key: other.privateKeyPem, dsaEncoding: 'ieee-p1363' })); // …but `other` signs
    const s = decodeBundle(bundle);
    const forged = encodeBundle({ manifest: s.manifest, code: s.code, signature: d.signingInput + '.' + Buffer.from(sig).toString('base64url') });
    expect(refusal(forged)).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/does not verify with the public key in the header/) });
  });

  it('a JWS whose header claims another algorithm', async () => {
    const { bundle } = await smallSignedBundle();
    const s = decodeBundle(bundle);
    const [, payload, sig] = s.signature!.split('.');
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'enclave-edge-ta+jws' })).toString('base64url');
    const forged = encodeBundle({ manifest: s.manifest, code: s.code, signature: `${header}.${payload}.${sig}` });
    expect(refusal(forged)).toMatchObject({ code: 'SIGNATURE_INVALID', message: expect.stringMatching(/alg must be ES256/) });
  });

  it('every single flipped byte of a small signed bundle (xor 0x01 and xor 0xff)', async () => {
    const { bundle } = await smallSignedBundle();
    expect(verifyBundle(bundle, TRUST).manifest.name).toBe('hello');
    const seen = new Map<string, number>();
    for (const mask of [0x01, 0xff]) {
      for (let i = 0; i < bundle.byteLength; i++) {
        const b = bundle.slice();
        b[i]! ^= mask;
        const r = refusal(b);
        expect(NAMED, `byte ${i} mask ${mask}: ${r.message}`).toContain(r.code);
        expect(r.message.length).toBeGreaterThan(10);
        expect(r.message).not.toMatch(/\n\s+at /); // no stack trace
        seen.set(r.code, (seen.get(r.code) ?? 0) + 1);
      }
    }
    // The header, the manifest/code and the signature regions each fail in their own way.
    expect(seen.get('BAD_FORMAT')).toBeGreaterThan(0);
    expect(seen.get('MEASUREMENT_MISMATCH')).toBeGreaterThan(0);
    expect(seen.get('SIGNATURE_INVALID')).toBeGreaterThan(0);
    expect(bundle.byteLength).toBeGreaterThan(TAB_HEADER_LENGTH + 300);
  });

  it('verifyBundleAsync refuses every flipped byte with the same code as verifyBundle', async () => {
    const { bundle } = await smallSignedBundle();
    expect((await verifyBundleAsync(bundle, TRUST)).measurement).toBe(verifyBundle(bundle, TRUST).measurement);
    for (let i = 0; i < bundle.byteLength; i++) {
      const b = bundle.slice();
      b[i]! ^= 0x01;
      const sync = refusal(b);
      const asyncErr = await verifyBundleAsync(b, TRUST).then(() => undefined, (e: unknown) => e as { code: string; message: string });
      expect(asyncErr, `byte ${i}`).toMatchObject({ code: sync.code, message: sync.message });
    }
  });
});
