import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { createDecipheriv } from 'node:crypto';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256 } from '@hpke/core';
import { NodeHkdfSha256 } from '@enclave-edge/confidential/native-primitives';
import {
  hpkeSuite, generateHpkeKeyPair, importHpkeKeyPair, sealRequest, parseRequestEnvelope, openRequest, EnvelopeError,
  CONFIDENTIAL_COMMAND, MAX_ENVELOPE_LIFETIME_MS, type HpkeKeyPair, type RequestEnvelope,
} from '@enclave-edge/confidential';
import { interopSetupBaseS } from './hpke-interop.js';

const V = JSON.parse(readFileSync(new URL('./vectors/rfc9180-a1-1-base-x25519-sha256-aes128gcm.json', import.meta.url), 'utf8')) as {
  info: string; skRm: string; pkRm: string; skEm: string; pkEm: string; enc: string;
  encryptions: Array<{ aad: string; plaintext: string; ciphertext: string }>;
  exports: Array<{ exportContext: string; exportLength: number; exportValue: string }>;
};
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const ab = (u: Uint8Array) => u.slice().buffer;

// RFC 9180 A.1.1 uses AES-128-GCM; the product's KEM and (node:crypto) KDF with that AEAD reproduce it.
const vectorSuite = () => new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new NodeHkdfSha256(), aead: new Aes128Gcm() });

describe('RFC 9180 A.1.1 vectors: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 (the KEM and KDF of the suite)', () => {
  it('the product KEM and KDF open the vector ciphertexts and export the vector values', async () => {
    const s = vectorSuite();
    const r = await s.createRecipientContext({ recipientKey: await s.kem.deserializePrivateKey(ab(hex(V.skRm))), enc: ab(hex(V.enc)), info: ab(hex(V.info)) });
    for (const e of V.encryptions) expect(Buffer.from(await r.open(ab(hex(e.ciphertext)), ab(hex(e.aad)))).toString('hex')).toBe(e.plaintext);
    for (const x of V.exports) expect(Buffer.from(await r.export(ab(hex(x.exportContext)), x.exportLength)).toString('hex')).toBe(x.exportValue);
  });

  it('the product KEM and KDF, given the vector ephemeral key, seal the vector ciphertexts', async () => {
    const s = vectorSuite();
    const ekm = { privateKey: await s.kem.deserializePrivateKey(ab(hex(V.skEm))), publicKey: await s.kem.deserializePublicKey(ab(hex(V.pkEm))) };
    const snd = await s.createSenderContext({ recipientPublicKey: await s.kem.deserializePublicKey(ab(hex(V.pkRm))), info: ab(hex(V.info)), ekm });
    expect(Buffer.from(snd.enc).toString('hex')).toBe(V.enc);
    for (const e of V.encryptions) expect(Buffer.from(await snd.seal(ab(hex(e.plaintext)), ab(hex(e.aad)))).toString('hex')).toBe(e.ciphertext);
  });

  it('the independent node:crypto sender used below reproduces the vectors too', () => {
    const snd = interopSetupBaseS(hex(V.pkRm), hex(V.info), hex(V.skEm), 'aes-128-gcm');
    expect(snd.enc.toString('hex')).toBe(V.enc);
    for (const e of V.encryptions) expect(snd.seal(hex(e.aad), hex(e.plaintext)).toString('hex')).toBe(e.ciphertext);
    for (const x of V.exports) expect(snd.export(hex(x.exportContext), x.exportLength).toString('hex')).toBe(x.exportValue);
  });

  it('with AES-256-GCM, the product suite and the independent sender agree byte for byte', async () => {
    const s = hpkeSuite();
    const ekm = { privateKey: await s.kem.deserializePrivateKey(ab(hex(V.skEm))), publicKey: await s.kem.deserializePublicKey(ab(hex(V.pkEm))) };
    const snd = await s.createSenderContext({ recipientPublicKey: await s.kem.deserializePublicKey(ab(hex(V.pkRm))), info: ab(hex(V.info)), ekm });
    const ind = interopSetupBaseS(hex(V.pkRm), hex(V.info), hex(V.skEm));
    for (const e of V.encryptions) expect(Buffer.from(await snd.seal(ab(hex(e.plaintext)), ab(hex(e.aad)))).toString('hex')).toBe(ind.seal(hex(e.aad), hex(e.plaintext)).toString('hex'));
    expect(Buffer.from(await snd.export(ab(hex('00')), 32)).toString('hex')).toBe(ind.export(hex('00'), 32).toString('hex'));
  });
});

const TA = 'key-vault';
const M = 'ab'.repeat(32);
const OLD_M = 'cd'.repeat(32);
let kp: HpkeKeyPair;
let other: HpkeKeyPair;

beforeAll(async () => {
  kp = await generateHpkeKeyPair();
  other = await generateHpkeKeyPair();
});

async function seal(over: { command?: string; params?: unknown; ta?: string; m?: string; lifetimeMs?: number; now?: number; to?: HpkeKeyPair } = {}) {
  return sealRequest({
    recipient: (over.to ?? kp).publicKey, ta: over.ta ?? TA, measurement: over.m ?? M, command: over.command ?? 'get',
    params: (over.params ?? { key: 'k' }) as never, ...(over.lifetimeMs ? { lifetimeMs: over.lifetimeMs } : {}), ...(over.now ? { now: over.now } : {}),
  });
}

const expect_ = { ta: TA, measurement: M };
async function open(env: unknown, e: { ta: string; measurement: string; now?: number } = expect_, key = kp) {
  return openRequest(parseRequestEnvelope(env, e), key.privateKey);
}
async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: string; message: string }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(EnvelopeError);
  const e = err as EnvelopeError;
  return { code: e.code, reason: e.reason, message: e.message };
}
const b64 = (s: string) => Buffer.from(s, 'base64url');
const flipLast = (s: string) => { const b = b64(s); b[b.length - 1]! ^= 1; return b.toString('base64url'); };

describe('envelope round trip', () => {
  it('opens to the command and params, and the answer opens only for its caller', async () => {
    const sealed = await seal({ params: { key: 'marker-3f9a' } });
    expect(JSON.stringify(sealed.envelope)).not.toContain('marker-3f9a');
    expect(JSON.stringify(sealed.envelope)).not.toContain('"get"');
    const opened = await open(sealed.envelope);
    expect(opened).toMatchObject({ command: 'get', params: { key: 'marker-3f9a' } });
    const resp = opened.sealResponse({ ok: true, result: { value: 'secret-77' } });
    expect(JSON.stringify(resp)).not.toContain('secret-77');
    const another = await seal();
    expect(await refusal(another.openResponse(resp))).toMatchObject({ reason: 'integrity', code: 'SEAL_INTEGRITY' });
    expect(await sealed.openResponse(resp)).toEqual({ ok: true, result: { value: 'secret-77' } });
  });

  it('carries TA errors inside the encrypted answer', async () => {
    const sealed = await seal();
    const opened = await open(sealed.envelope);
    const resp = opened.sealResponse({ ok: false, error: { code: 'ITEM_NOT_FOUND', message: 'no key "k"' } });
    expect(JSON.stringify(resp)).not.toContain('no key');
    expect(await sealed.openResponse(resp)).toEqual({ ok: false, error: { code: 'ITEM_NOT_FOUND', message: 'no key "k"' } });
  });

  it('the key pair survives serialisation to its raw halves', async () => {
    const again = await importHpkeKeyPair(kp.rawPrivate, kp.rawPublic);
    const sealed = await seal();
    expect((await open(sealed.envelope, expect_, again)).command).toBe('get');
  });

  it('an envelope from an independent HPKE implementation opens, and its caller opens the answer', async () => {
    const header = Buffer.from(JSON.stringify({ v: 1, kem: 32, kdf: 1, aead: 2, ta: TA, m: M, rid: 'interop-request-0001', exp: Date.now() + 30_000 }));
    const snd = interopSetupBaseS(kp.rawPublic, Buffer.from('enclave-edge/confidential/v1'));
    const ct = snd.seal(header, Buffer.from(JSON.stringify({ c: 'get', p: { key: 'interop' } })));
    const env: RequestEnvelope = { v: 1, h: header.toString('base64url'), enc: snd.enc.toString('base64url'), ct: ct.toString('base64url') };
    const opened = await open(env);
    expect(opened).toMatchObject({ command: 'get', params: { key: 'interop' } });
    const resp = opened.sealResponse({ ok: true, result: 42 });
    const key = snd.export(Buffer.from('enclave-edge/confidential/v1/response-key'), 32);
    const data = b64(resp.ct);
    const d = createDecipheriv('aes-256-gcm', key, b64(resp.n));
    d.setAAD(Buffer.concat([Buffer.from('enclave-edge/confidential/v1/response\0'), header]));
    d.setAuthTag(data.subarray(data.length - 16));
    expect(JSON.parse(Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]).toString())).toEqual({ ok: true, r: 42 });
  });

  it('travels under the reserved command name, which is no identifier a TA could define by accident', () => {
    expect(CONFIDENTIAL_COMMAND).toBe('__ee_confidential');
  });
});

describe('bad envelopes are refused with a code and a reason', () => {
  it('tampered ciphertext', async () => {
    const { envelope } = await seal();
    expect(await refusal(open({ ...envelope, ct: flipLast(envelope.ct) }))).toMatchObject({ reason: 'integrity', code: 'SEAL_INTEGRITY' });
  });

  it('tampered header (it is the AAD)', async () => {
    const { envelope } = await seal();
    const h = JSON.parse(b64(envelope.h).toString());
    h.exp += 1000;
    expect(await refusal(open({ ...envelope, h: Buffer.from(JSON.stringify(h)).toString('base64url') }))).toMatchObject({ reason: 'integrity' });
  });

  it('truncated ciphertext, truncated enc, and an envelope cut short', async () => {
    const { envelope } = await seal();
    expect(await refusal(open({ ...envelope, ct: b64(envelope.ct).subarray(0, 20).toString('base64url') }))).toMatchObject({ reason: 'integrity' });
    expect(await refusal(open({ ...envelope, ct: b64(envelope.ct).subarray(0, 10).toString('base64url') }))).toMatchObject({ reason: 'malformed', code: 'BAD_FORMAT' });
    expect(await refusal(open({ ...envelope, enc: b64(envelope.enc).subarray(0, 31).toString('base64url') }))).toMatchObject({ reason: 'malformed' });
    expect(await refusal(open({ v: 1, h: envelope.h, enc: envelope.enc }))).toMatchObject({ reason: 'malformed' });
  });

  it('re-ordered: parts of two envelopes swapped', async () => {
    const a = (await seal()).envelope;
    const b = (await seal()).envelope;
    expect(await refusal(open({ ...a, enc: b.enc }))).toMatchObject({ reason: 'integrity' });
    expect(await refusal(open({ ...a, h: b.h }))).toMatchObject({ reason: 'integrity' });
    expect(await refusal(open({ ...a, enc: a.ct.slice(0, a.enc.length), ct: a.enc + a.ct.slice(a.enc.length) }))).toMatchObject({ reason: 'integrity' });
  });

  it('for another TA, for an older measurement, sealed to another key', async () => {
    expect(await refusal(open((await seal({ ta: 'hello' })).envelope))).toMatchObject({ reason: 'ta', code: 'ACCESS_DENIED' });
    expect(await refusal(open((await seal({ m: OLD_M })).envelope))).toMatchObject({ reason: 'measurement', code: 'MEASUREMENT_MISMATCH' });
    expect(await refusal(open((await seal({ to: other })).envelope))).toMatchObject({ reason: 'integrity' });
  });

  it('expired, and valid for longer than the enclave remembers', async () => {
    const old = await seal({ now: Date.now() - 10 * 60_000, lifetimeMs: 1000 });
    expect(await refusal(open(old.envelope))).toMatchObject({ reason: 'expired', code: 'ACCESS_DENIED' });
    const far = await seal({ now: Date.now() + 60 * 60_000, lifetimeMs: 1000 });
    expect(await refusal(open(far.envelope))).toMatchObject({ reason: 'lifetime' });
    await expect(seal({ lifetimeMs: MAX_ENVELOPE_LIFETIME_MS + 1 })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('a wrong HPKE suite or envelope version', async () => {
    const { envelope } = await seal();
    const h = JSON.parse(b64(envelope.h).toString());
    for (const change of [{ aead: 1 }, { kem: 0x10 }, { kdf: 3 }, { v: 2 }]) {
      const r = await refusal(open({ ...envelope, h: Buffer.from(JSON.stringify({ ...h, ...change })).toString('base64url') }));
      expect(r).toMatchObject({ reason: 'suite', code: 'NOT_SUPPORTED' });
    }
    expect(await refusal(open({ ...envelope, v: 2 }))).toMatchObject({ reason: 'suite' });
  });

  it('not an envelope at all, and a header with extra fields', async () => {
    for (const bad of [null, 'x', 42, [], { v: 1 }, { v: 1, h: '!!', enc: 'a', ct: 'b' }, { v: 1, h: 'a'.repeat(2000), enc: 'a', ct: 'b' }]) {
      expect(await refusal(open(bad))).toMatchObject({ reason: expect.stringMatching(/malformed|suite/) });
    }
    const { envelope } = await seal();
    const h = JSON.parse(b64(envelope.h).toString());
    expect(await refusal(open({ ...envelope, h: Buffer.from(JSON.stringify({ ...h, extra: 1 })).toString('base64url') }))).toMatchObject({ reason: 'malformed' });
  });

  it('refusal messages never contain the plaintext', async () => {
    const { envelope } = await seal({ params: { key: 'marker-c0ffee' } });
    const r = await refusal(open({ ...envelope, ct: flipLast(envelope.ct) }));
    expect(r.message).not.toContain('marker-c0ffee');
  });

  it('an answer is opened once, and a tampered answer is refused', async () => {
    const sealed = await seal();
    const resp = (await open(sealed.envelope)).sealResponse({ ok: true, result: 1 });
    expect(await refusal(sealed.openResponse({ ...resp, ct: flipLast(resp.ct) }))).toMatchObject({ reason: 'integrity' });
    await expect(sealed.openResponse(resp)).rejects.toMatchObject({ code: 'CONFLICT' });
    const s2 = await seal();
    expect(await refusal(s2.openResponse({ v: 1, n: 'AAAA', ct: 'AAAA' }))).toMatchObject({ reason: 'malformed' });
  });
});
