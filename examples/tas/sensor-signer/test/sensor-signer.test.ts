import { fileURLToPath } from 'node:url';
import { createPublicKey, verify } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTA, loadTAForTests } from '@enclave-edge/ta-toolchain';
import { canonicalJson } from '@enclave-edge/bundle';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('sensor-signer TA', () => {
  let bundle: Uint8Array;
  beforeAll(async () => {
    ({ bundle } = await buildTA(dir, { write: false }));
  });

  it('creates one key on first use, keeps it sealed, and signs readings verifiable with the public JWK', async () => {
    const ta = await loadTAForTests(bundle);
    const [a, b] = await Promise.all([ta.invoke('publicKey'), ta.invoke('publicKey')]);
    expect(a).toEqual(b); // concurrent first calls make one key
    const jwk = a as { kty: string; crv: string; x: string; y: string; kid: string };
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(JSON.stringify(jwk)).not.toMatch(/"d"/); // no private part

    // stored sealed: the storage value is a blob, not the key in the clear
    const stored = ta.context.storageForTests.get('signing-key')!;
    expect(Buffer.from(stored).toString('latin1')).not.toContain(jwk.x);

    const reading = { sensor: 't1', value: 21.5, unit: 'C' };
    const out = (await ta.invoke('sign', reading)) as { reading: unknown; signature: string; keyId: string };
    expect(out.reading).toEqual(reading);
    expect(out.keyId).toBe(jwk.kid);
    const key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: 'jwk' });
    expect(verify('sha256', Buffer.from(canonicalJson(reading)), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'base64url'))).toBe(true);
    expect(verify('sha256', Buffer.from(canonicalJson({ ...reading, value: 99 })), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(out.signature, 'base64url'))).toBe(false);
    expect(ta.context.logs.some((l) => l.message === 'created signing key')).toBe(true);
  });

  it('refuses a reading that is not an object', async () => {
    const ta = await loadTAForTests(bundle);
    await expect(ta.invoke('sign', 42)).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/JSON object/) });
  });
});
