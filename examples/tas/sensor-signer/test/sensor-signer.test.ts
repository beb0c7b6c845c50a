import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { openSealedReading, parseX25519PublicJwk, recipientThumbprint } from '@enclave-edge/confidential';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain/test-harness';
import { canonicalJson } from '@enclave-edge/bundle';

const dir = fileURLToPath(new URL('..', import.meta.url));

/** Every file under dir, as bytes (the state dir: root of trust and sealed storage). */
function filesUnder(dir: string): Buffer[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => readFileSync(join(e.parentPath, e.name)));
}

describe('sensor-signer TA', () => {
  // One enclave for the file (each costs a process start); the first test sees it fresh.
  let ta: TAForTests;
  beforeAll(async () => {
    const { bundle } = await buildTA(dir, { write: false });
    ta = await loadTAForTests(bundle);
  });
  afterAll(() => ta?.destroy());

  it('creates one key on first use, keeps it sealed, and signs readings verifiable with the public JWK', async () => {
    const [a, b] = await Promise.all([ta.invoke('publicKey'), ta.invoke('publicKey')]);
    expect(a).toEqual(b); // concurrent first calls make one key
    const jwk = a as { kty: string; crv: string; x: string; y: string; kid: string };
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(JSON.stringify(jwk)).not.toMatch(/"d"/); // no private part

    // stored sealed: no file of the state dir holds the key in the clear (not even its public part)
    const files = filesUnder(ta.stateDir);
    expect(files.length).toBeGreaterThan(0);
    const x = Buffer.from(jwk.x, 'base64url');
    for (const f of files) {
      expect(f.includes(x)).toBe(false);
      expect(f.toString('latin1')).not.toContain(jwk.x);
    }

    const reading = { sensor: 't1', value: 21.5, unit: 'C' };
    const out = (await ta.invoke('sign', reading)) as { reading: unknown; signature: string; keyId: string };
    expect(out.reading).toEqual(reading);
    expect(out.keyId).toBe(jwk.kid);
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
    expect(verify('sha256', Buffer.from(canonicalJson(reading)), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'base64url'))).toBe(true);
    expect(verify('sha256', Buffer.from(canonicalJson({ ...reading, value: 99 })), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'base64url'))).toBe(false);
    expect(ta.logs.some((l) => l.message === 'created signing key')).toBe(true);
  });

  it('signSealed: only the recipient opens the reading; the signature covers reading and header; bad recipient keys are refused by name', async () => {
    const signer = (await ta.invoke('publicKey')) as { kty: string; crv: string; x: string; y: string };
    const r = generateKeyPairSync('x25519');
    const jwk = r.publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
    const privateKey = new Uint8Array(Buffer.from(r.privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    const reading = { sensor: 't1', value: 21.5, note: 'marker-5e1f' };
    const a = (await ta.invoke('signSealed', { reading, recipient: jwk, pipeline: 'p1' })) as { v: number; h: string; enc: string; ct: string };
    const b = (await ta.invoke('signSealed', { reading, recipient: jwk, pipeline: 'p1' })) as typeof a;
    expect(JSON.stringify(a)).not.toContain('marker-5e1f');
    const opened = await openSealedReading(a, { privateKey, signer, expect: { ta: 'sensor-signer', pipeline: 'p1' } });
    expect(opened.reading).toEqual(reading);
    expect(opened.header).toMatchObject({ ta: 'sensor-signer', pipeline: 'p1', rcpt: recipientThumbprint(parseX25519PublicJwk(jwk)) });
    expect((await openSealedReading(b, { privateKey, signer })).header.seq).toBe(opened.header.seq + 1);
    // Another key, another expected pipeline, a header moved from another reading: refused.
    const other = new Uint8Array(Buffer.from(generateKeyPairSync('x25519').privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    await expect(openSealedReading(a, { privateKey: other, signer })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY', reason: 'integrity' });
    await expect(openSealedReading(a, { privateKey, signer, expect: { pipeline: 'p2' } })).rejects.toMatchObject({ reason: 'binding' });
    await expect(openSealedReading({ ...a, h: b.h }, { privateKey, signer })).rejects.toMatchObject({ reason: 'integrity' });
    const wrongSigner = (generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })) as typeof signer;
    await expect(openSealedReading(a, { privateKey, signer: wrongSigner })).rejects.toMatchObject({ reason: 'signature' });
    const refused = async (recipient: object, reason: string) =>
      expect(ta.invoke('signSealed', { reading, recipient: recipient as never, pipeline: 'p1' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringContaining(`refused (${reason})`) });
    await refused({ ...jwk, x: jwk.x.slice(0, 42) }, 'length');
    await refused(signer, 'suite');
    await refused(r.privateKey.export({ format: 'jwk' }), 'private');
    await refused({ kty: 'OKP', crv: 'X25519', x: Buffer.alloc(32).toString('base64url') }, 'weak');
    await refused({ ...jwk, alg: 'ECDH-ES' }, 'fields');
  });

  it('refuses a reading that is not an object', async () => {
    await expect(ta.invoke('sign', 42)).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/JSON object/) });
  });
});
