import { describe, it, expect } from 'vitest';
import { parsePkcs11Uri, formatPkcs11Uri } from '@enclave-edge/pkcs11';

describe('parsePkcs11Uri (RFC 7512)', () => {
  it('parses path and query attributes with percent-decoding', () => {
    const u = parsePkcs11Uri('pkcs11:token=My%20Token;object=att%2Fkey;id=%01%02%ff;type=private;slot-id=7?module-path=/usr/lib/x.so&pin-source=file:/run/pin');
    expect(u.token).toBe('My Token');
    expect(u.object).toBe('att/key');
    expect(Array.from(u.id!)).toEqual([1, 2, 255]);
    expect(u.type).toBe('private');
    expect(u.slotId).toBe(7);
    expect(u.modulePath).toBe('/usr/lib/x.so');
    expect(u.pinSource).toBe('file:/run/pin');
  });

  it('accepts the RFC examples and vendor attributes', () => {
    expect(parsePkcs11Uri('pkcs11:')).toEqual({});
    expect(parsePkcs11Uri('pkcs11:object=my-pubkey;type=public').type).toBe('public');
    expect(parsePkcs11Uri('pkcs11:token=A;x-vendor=1?pin-value=12%2034').pinValue).toBe('12 34');
    expect(parsePkcs11Uri('pkcs11:manufacturer=SoftHSM%20project;serial=abc;model=SoftHSM%20v2').manufacturer).toBe('SoftHSM project');
  });

  it('round-trips through formatPkcs11Uri', () => {
    const s = formatPkcs11Uri({ token: 'tok;en', object: 'a b', id: new Uint8Array([0, 9]), type: 'secret-key', modulePath: '/usr/lib/softhsm/libsofthsm2.so' });
    const u = parsePkcs11Uri(s);
    expect(u).toMatchObject({ token: 'tok;en', object: 'a b', type: 'secret-key', modulePath: '/usr/lib/softhsm/libsofthsm2.so' });
    expect(Array.from(u.id!)).toEqual([0, 9]);
  });

  it.each([
    ['file:/x', /must start with "pkcs11:"/],
    ['pkcs11:token', /has no "="/],
    ['pkcs11:tokn=A', /unknown path attribute "tokn"/],
    ['pkcs11:token=A;token=B', /given twice/],
    ['pkcs11:object=%zz', /bad percent-encoding in "object"/],
    ['pkcs11:type=secret', /"type" must be one of/],
    ['pkcs11:slot-id=x1', /"slot-id" must be a decimal number/],
    ['pkcs11:token=A?pin-value=1&pin-source=/p', /not both/],
    ['pkcs11:token=A?pinvalue=1', /unknown query attribute "pinvalue"/],
    ['pkcs11:object=%ff', /not valid UTF-8/],
  ])('refuses %s', (uri, why) => {
    expect(() => parsePkcs11Uri(uri)).toThrow(why);
    try {
      parsePkcs11Uri(uri);
    } catch (e) {
      expect((e as { code: string }).code).toBe('CONFIG_INVALID');
    }
  });

  it('never echoes a PIN in its errors', () => {
    expect(() => parsePkcs11Uri('pkcs11:bogus=1?pin-value=secret-pin')).toThrow(/^(?!.*secret-pin)/);
  });
});
