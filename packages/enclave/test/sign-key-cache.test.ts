/**
 * ctx.crypto.sign keeps parsed keys in a bounded cache (by digest of the key bytes): signatures
 * must still come from exactly the key passed, across more keys than the cache holds, and bad
 * key bytes must still fail after good ones were cached.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { createPublicKey, verify } from 'node:crypto';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle } from '@enclave-edge/enclave/testing';

const SIGNER_TA = String.raw`
'use strict';
const keys = [];
module.exports = { commands: {
  makeKeys: (ctx, p) => { for (let i = 0; i < p.n; i++) keys.push(ctx.crypto.generateKeyPair('ES256')); return keys.map((k) => k.publicKey); },
  sign: (ctx, p) => ctx.crypto.sign('ES256', keys[p.i].privateKey, p.data),
  signWith: (ctx, p) => ctx.crypto.sign('ES256', p.key, p.data),
} };
`;

const live: EmulatedEnclave[] = [];
afterAll(async () => {
  await Promise.all(live.map((e) => e.destroy()));
});

describe('ctx.crypto.sign with the parsed-key cache', () => {
  it('signs with exactly the key given, across more keys than the cache holds', async () => {
    const e = await new EmulatedBackend().create(makeTestBundle(SIGNER_TA, { name: 'signer' }));
    live.push(e);
    const pubs = (await e.invoke(undefined, 'makeKeys', { n: 20 })) as Array<{ kty: string; crv: string; x: string; y: string }>;
    // Two rounds over 20 keys: the second round evicts and re-parses (cache holds 16).
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < pubs.length; i++) {
        const data = `reading ${round}/${i}`;
        const sig = (await e.invoke(undefined, 'sign', { i, data })) as Uint8Array;
        const own = createPublicKey({ key: pubs[i]!, format: 'jwk' });
        const other = createPublicKey({ key: pubs[(i + 1) % pubs.length]!, format: 'jwk' });
        expect(verify('sha256', Buffer.from(data), { key: own, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
        expect(verify('sha256', Buffer.from(data), { key: other, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
      }
    }
  });

  it('still refuses bad key bytes after good keys were cached', async () => {
    const e = await new EmulatedBackend().create(makeTestBundle(SIGNER_TA, { name: 'signer-bad' }));
    live.push(e);
    await e.invoke(undefined, 'makeKeys', { n: 1 });
    await e.invoke(undefined, 'sign', { i: 0, data: 'warm' });
    await expect(e.invoke(undefined, 'signWith', { key: new Uint8Array([1, 2, 3]), data: 'x' })).rejects.toMatchObject({
      code: 'BAD_PARAMETERS',
      message: expect.stringContaining('PKCS#8'),
    });
    await expect(e.invoke(undefined, 'signWith', { key: new Uint8Array([1, 2, 3]), data: 'x' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
