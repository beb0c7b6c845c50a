import { describe, expect, it } from 'vitest';
import { decodeNonce, encodeNonce } from '@enclave-edge/attestation';
import { decodeNonce as bridgeDecodeNonce } from '@enclave-edge/enclave/internals';

const BYTES = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);

describe('the one nonce codec', () => {
  it('bytes, hex, unpadded and padded base64url are the same nonce', () => {
    for (const form of [BYTES, '0001020304050607', 'AAECAwQFBgc', 'AAECAwQFBgc=']) expect(decodeNonce(form)).toEqual(BYTES);
    expect(encodeNonce('AAECAwQFBgc=')).toBe('AAECAwQFBgc');
    expect(encodeNonce('0001020304050607')).toBe('AAECAwQFBgc');
  });

  it('refuses every other form with one error naming the accepted forms', () => {
    for (const bad of ['AAECAwQFBgc==', 'AAEC AwQFBgc', 'AAECAwQFBgc=x', 'abcd', 'not a nonce!', '', 42, null, new Uint8Array(56), new Uint8Array(65), 'A'.repeat(200)]) {
      expect(() => decodeNonce(bad)).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/^nonce must be 8\.\.55 bytes: a Uint8Array, hex, or base64url \(padding optional\)/) }));
    }
  });

  it('eat_nonce is an RFC 9711 §4.1 JSON nonce: a text string of 10..74 bytes, for the shortest and the longest nonce', () => {
    for (const n of [8, 55]) {
      const text = encodeNonce(new Uint8Array(n).fill(0xff));
      expect(Buffer.byteLength(text, 'ascii')).toBeGreaterThanOrEqual(10);
      expect(Buffer.byteLength(text, 'ascii')).toBeLessThanOrEqual(74);
      expect(decodeNonce(text)).toEqual(new Uint8Array(n).fill(0xff));
    }
  });

  it('is the codec the enclave trust bridge uses (ta-runtime imports it too)', () => {
    expect(bridgeDecodeNonce).toBe(decodeNonce);
  });

});
