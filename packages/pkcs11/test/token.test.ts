import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSoftHsmToken, openToken, moduleRefCount, DEFAULT_MODULE_PATH, type Pkcs11Token, type SoftHsmToken } from '@enclave-edge/pkcs11';

let hsm: SoftHsmToken;
let other: SoftHsmToken;
let token: Pkcs11Token;

beforeAll(async () => {
  // SoftHSM2 scans its token directory when the module is initialised: create every token first.
  hsm = createSoftHsmToken();
  other = createSoftHsmToken();
  token = await openToken({ uri: hsm.uri });
});
afterAll(async () => {
  await token?.close();
  hsm?.dispose();
  other?.dispose();
});

describe('openToken with a real SoftHSM2 token', () => {
  it('opens the token the URI names', () => {
    expect(token.label).toBe(hsm.label);
    expect(token.uri.pinValue).toBeUndefined();
  });

  it('generates a non-extractable P-256 key whose raw ECDSA signatures verify in Node', async () => {
    const { privateKey } = await token.generateEcKeyPair({ label: 'att-1' });
    const prot = await token.keyProtection(privateKey);
    expect(prot).toEqual({ sensitive: true, extractable: false, neverExtractable: true });
    const spki = await token.exportEcPublicKeySpki(privateKey);
    const pub = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const data = Buffer.from('hello enclave-edge');
    const sig = await token.ecdsaSignDigest(privateKey, createHash('sha256').update(data).digest());
    expect(sig.length).toBe(64);
    expect(nodeVerify('sha256', data, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(nodeVerify('sha256', Buffer.from('other'), { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
  });

  it('signs concurrently without interleaving operations on the session', async () => {
    const { privateKey } = await token.generateEcKeyPair({ label: 'att-conc', persistent: false });
    const pub = createPublicKey({ key: Buffer.from(await token.exportEcPublicKeySpki(privateKey)), format: 'der', type: 'spki' });
    const msgs = Array.from({ length: 20 }, (_, i) => Buffer.from(`m${i}`));
    const sigs = await Promise.all(msgs.map((m) => token.ecdsaSignDigest(privateKey, createHash('sha256').update(m).digest())));
    sigs.forEach((s, i) => expect(nodeVerify('sha256', msgs[i]!, { key: pub, dsaEncoding: 'ieee-p1363' }, s)).toBe(true));
  });

  it('finds keys by label and by URI, and refuses ambiguity', async () => {
    await token.generateEcKeyPair({ label: 'find-me', id: new Uint8Array([0xaa, 0x01]) });
    const byLabel = await token.findKey({ class: 'private', label: 'find-me' });
    expect(byLabel?.label).toBe('find-me');
    expect(Array.from(byLabel!.id!)).toEqual([0xaa, 0x01]);
    const byUri = await token.findKeyFromUri(`pkcs11:token=${hsm.label};id=%aa%01;type=private`);
    expect(byUri.label).toBe('find-me');
    expect(await token.findKey({ class: 'private', label: 'absent' })).toBeUndefined();
    await expect(token.findKeyFromUri(`pkcs11:object=absent`)).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    await token.generateEcKeyPair({ label: 'twice', id: new Uint8Array([1]) });
    await token.generateEcKeyPair({ label: 'twice', id: new Uint8Array([2]) });
    await expect(token.findKey({ class: 'private', label: 'twice' })).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('computes HMAC-SHA256 inside the token with a non-extractable secret', async () => {
    const key = await token.generateSecretKey({ label: 'seal-root' });
    expect(await token.keyProtection(key)).toMatchObject({ sensitive: true, extractable: false });
    const a = await token.hmacSha256(key, Buffer.from('x'));
    const b = await token.hmacSha256(key, Buffer.from('x'));
    const c = await token.hmacSha256(key, Buffer.from('y'));
    expect(a.length).toBe(32);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('HKDF-Expand in the token follows RFC 5869 §2.3', async () => {
    // The token's HMAC is checked by hand-chaining T(i) = HMAC(PRK, T(i-1) | info | i).
    const key = await token.generateSecretKey({ label: 'hkdf', persistent: false });
    const info = Buffer.from('enclave-edge seal v1');
    const okm = await token.hkdfExpandSha256(key, info, 80);
    const t1 = await token.hmacSha256(key, Buffer.concat([info, Buffer.from([1])]));
    const t2 = await token.hmacSha256(key, Buffer.concat([t1, info, Buffer.from([2])]));
    const t3 = await token.hmacSha256(key, Buffer.concat([t2, info, Buffer.from([3])]));
    expect(Buffer.from(okm).equals(Buffer.concat([t1, t2, t3]).subarray(0, 80))).toBe(true);
    await expect(token.hkdfExpandSha256(key, info, 0)).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('keeps persistent keys across close and reopen (module reference-counted)', async () => {
    await token.generateSecretKey({ label: 'persist-me' });
    const second = await openToken({ uri: hsm.uri });
    expect(moduleRefCount(DEFAULT_MODULE_PATH)).toBe(2);
    const k = await second.findKey({ class: 'secret', label: 'persist-me' });
    expect(k).toBeDefined();
    await second.close();
    await second.close();
    expect(moduleRefCount(DEFAULT_MODULE_PATH)).toBe(1);
    expect(await token.findKey({ class: 'secret', label: 'persist-me' })).toBeDefined();
  });

  it('reads the PIN from a pin-source file and from PKCS11_PIN', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ee-pin-'));
    try {
      const pinFile = join(dir, 'pin');
      writeFileSync(pinFile, `${hsm.pin}\n`, { mode: 0o600 });
      const t = await openToken({ uri: `pkcs11:token=${hsm.label}?pin-source=file:${pinFile}` });
      expect(await t.findKey({ class: 'secret', label: 'seal-root' })).toBeDefined();
      await t.close();
      process.env.PKCS11_PIN = hsm.pin;
      const t2 = await openToken({ uri: `pkcs11:token=${hsm.label}` });
      expect(t2.label).toBe(hsm.label);
      await t2.close();
    } finally {
      delete process.env.PKCS11_PIN;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with clear errors: wrong PIN, unknown token, missing module, missing pin file, bad digest', async () => {
    await expect(openToken({ uri: `pkcs11:token=${other.label}`, pin: '0000' })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/CKR_PIN_INCORRECT/) });
    await expect(openToken({ uri: 'pkcs11:token=no-such-token', pin: '1' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringMatching(/no-such-token/) });
    await expect(openToken({ uri: 'pkcs11:token=x', modulePath: '/nonexistent/lib.so' })).rejects.toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/\/nonexistent\/lib.so/) });
    await expect(openToken({ uri: 'pkcs11:token=x?pin-source=file:/nonexistent/pin' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/ENOENT/) });
    const { privateKey } = await token.generateEcKeyPair({ label: 'd', persistent: false });
    await expect(token.ecdsaSignDigest(privateKey, new Uint8Array(20))).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    const sec = await token.generateSecretKey({ label: 's', persistent: false });
    await expect(token.ecdsaSignDigest(sec, new Uint8Array(32))).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    // Module refcount stays balanced after failed opens.
    expect(moduleRefCount(DEFAULT_MODULE_PATH)).toBe(1);
  });

  it('refuses operations after close', async () => {
    const t = await openToken({ uri: hsm.uri });
    const k = await t.findKey({ class: 'secret', label: 'seal-root' });
    await t.close();
    await expect(t.hmacSha256(k!, new Uint8Array(1))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
