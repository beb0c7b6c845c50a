import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHmac, hkdfSync } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { createSoftHsmToken, openToken, type Pkcs11Token, type SoftHsmToken } from '@enclave-edge/pkcs11';

// RFC 5869 Appendix A.1 (SHA-256).
const IKM = Buffer.from('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b', 'hex');
const SALT = Buffer.from('000102030405060708090a0b0c', 'hex');
const INFO = Buffer.from('f0f1f2f3f4f5f6f7f8f9', 'hex');
const PRK = Buffer.from('077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5', 'hex');
const OKM = Buffer.from('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865', 'hex');

let token: Pkcs11Token;
let label: string;
let hsm: SoftHsmToken;
beforeAll(async () => {
  hsm = createSoftHsmToken();
  label = hsm.label;
  token = await openToken({ uri: hsm.uri });
});
afterAll(async () => {
  await token?.close();
  hsm?.dispose();
});

describe('in-token HKDF-Expand against RFC 5869 A.1', () => {
  it('matches the test vector when the token holds the vector PRK', async () => {
    expect(createHmac('sha256', SALT).update(IKM).digest().equals(PRK)).toBe(true);
    expect(Buffer.from(hkdfSync('sha256', IKM, SALT, INFO, 42)).equals(OKM)).toBe(true);
    // Put the known PRK into the token as a session secret key (raw pkcs11js; our API only generates keys).
    const lib = new pkcs11js.PKCS11();
    lib.load(token.modulePath);
    try {
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (err) {
      expect(String((err as Error).message)).toMatch(/ALREADY_INITIALIZED/);
    }
    const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trimEnd() === label)!;
    const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    lib.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_LABEL, value: 'rfc5869-prk' },
      { type: pkcs11js.CKA_VALUE, value: PRK },
    ]);
    try {
      const key = await token.findKey({ class: 'secret', label: 'rfc5869-prk' });
      expect(key).toBeDefined();
      const okm = await token.hkdfExpandSha256(key!, INFO, 42);
      expect(Buffer.from(okm).toString('hex')).toBe(OKM.toString('hex'));
    } finally {
      lib.C_CloseSession(session);
      // No C_Finalize: the module belongs to openToken's reference count.
    }
  });
});
