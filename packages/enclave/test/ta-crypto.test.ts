/** ctx.crypto AEAD and HPKE inside the real enclave (worker + SES compartment). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { EmulatedBackend, type Enclave } from '@enclave-edge/enclave';
import { makeTestBundle } from '@enclave-edge/enclave/testing';
import { hpkeOpen, hpkeSeal, x25519KeyPair, aeadOpen } from '@enclave-edge/confidential/ta-crypto';

const CRYPTO_TA = `module.exports = { commands: {
  seal: (ctx, p) => ctx.crypto.aeadSeal(p.alg, p.key, p.nonce, p.text, p.aad),
  open: (ctx, p) => new TextDecoder().decode(ctx.crypto.aeadOpen(p.alg, p.key, p.nonce, p.ct, p.aad)),
  toRecipient: async (ctx, p) => ctx.crypto.hpkeSeal(p.recipient, p.text, { info: 'reading' }),
  roundTrip: async (ctx, p) => {
    const k = ctx.crypto.generateKeyPair('X25519');
    const s = await ctx.crypto.hpkeSeal(k.publicKey, p.text, { aad: 'a' });
    return new TextDecoder().decode(await ctx.crypto.hpkeOpen(k.privateKey, s.enc, s.ciphertext, { aad: 'a' }));
  },
  openFrom: async (ctx, p) => new TextDecoder().decode(await ctx.crypto.hpkeOpen(p.key, p.enc, p.ct)),
} };`;

const backend = new EmulatedBackend();
let e: Enclave;
beforeAll(async () => {
  e = await backend.create(makeTestBundle(CRYPTO_TA, { name: 'crypto-ta' }));
});
afterAll(async () => {
  await e.destroy();
});

const key = new Uint8Array(randomBytes(32));

describe('ctx.crypto AEAD', () => {
  it('A256GCM: what the TA seals is standard AES-256-GCM (ct ‖ tag), and it opens its own', async () => {
    const nonce = new Uint8Array(randomBytes(12));
    const ct = (await e.invoke(undefined, 'seal', { alg: 'A256GCM', key, nonce, text: 'hello gcm', aad: 'ctx' })) as Uint8Array;
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(Buffer.from('ctx'));
    d.setAuthTag(ct.subarray(ct.length - 16));
    expect(Buffer.concat([d.update(ct.subarray(0, ct.length - 16)), d.final()]).toString()).toBe('hello gcm');
    expect(await e.invoke(undefined, 'open', { alg: 'A256GCM', key, nonce, ct, aad: 'ctx' })).toBe('hello gcm');
  });

  it('XC20P (24-byte nonce) round trips, and opens outside the enclave', async () => {
    const nonce = new Uint8Array(randomBytes(24));
    const ct = (await e.invoke(undefined, 'seal', { alg: 'XC20P', key, nonce, text: 'hello xchacha' })) as Uint8Array;
    expect(new TextDecoder().decode(aeadOpen('XC20P', key, nonce, ct))).toBe('hello xchacha');
    expect(await e.invoke(undefined, 'open', { alg: 'XC20P', key, nonce, ct })).toBe('hello xchacha');
  });

  it('a changed byte, wrong AAD, wrong nonce size or unknown algorithm is refused with a code', async () => {
    const nonce = new Uint8Array(randomBytes(12));
    const ct = (await e.invoke(undefined, 'seal', { alg: 'A256GCM', key, nonce, text: 'x', aad: 'a' })) as Uint8Array;
    const bad = ct.slice();
    bad[0]! ^= 1;
    await expect(e.invoke(undefined, 'open', { alg: 'A256GCM', key, nonce, ct: bad, aad: 'a' })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(e.invoke(undefined, 'open', { alg: 'A256GCM', key, nonce, ct, aad: 'b' })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await expect(e.invoke(undefined, 'seal', { alg: 'XC20P', key, nonce, text: 'x' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(e.invoke(undefined, 'seal', { alg: 'A128CBC', key, nonce, text: 'x' })).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
  });
});

describe('ctx.crypto HPKE', () => {
  it('seals to a recipient key that only its holder opens, and opens what is sealed to it', async () => {
    const r = x25519KeyPair();
    const s = (await e.invoke(undefined, 'toRecipient', { recipient: r.publicKey as never, text: 'reading 42' })) as { enc: Uint8Array; ciphertext: Uint8Array };
    expect(new TextDecoder().decode(await hpkeOpen(r.privateKey, s.enc, s.ciphertext, { info: new TextEncoder().encode('reading') }))).toBe('reading 42');
    await expect(hpkeOpen(x25519KeyPair().privateKey, s.enc, s.ciphertext, { info: new TextEncoder().encode('reading') })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    expect(await e.invoke(undefined, 'roundTrip', { text: 'inside' })).toBe('inside');
    const mine = x25519KeyPair();
    const toTa = await hpkeSeal(mine.publicKey, new TextEncoder().encode('for the TA'));
    expect(await e.invoke(undefined, 'openFrom', { key: mine.privateKey, enc: toTa.enc, ct: toTa.ciphertext })).toBe('for the TA');
    await expect(e.invoke(undefined, 'toRecipient', { recipient: { kty: 'EC' } as never, text: 'x' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
