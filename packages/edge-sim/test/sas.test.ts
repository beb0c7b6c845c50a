import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import common from 'azure-iot-common';
import { createSas, parseSas, verifySas } from '@enclave-edge/edge-sim';

const key = randomBytes(32).toString('base64');
const resource = 'edge-sim.local/devices/dev1/modules/mod A';

describe('SAS tokens', () => {
  it('verifies a token made by the Azure SDK itself', () => {
    const sdkToken = common.SharedAccessSignature.create(common.encodeUriComponentStrict(resource), '', key, Math.floor(Date.now() / 1000) + 60).toString();
    const r = verifySas(sdkToken, key, (res) => res === resource);
    expect(r.ok).toBe(true);
  });

  it('round-trips its own tokens, with key name', () => {
    const token = createSas(resource, key, { keyName: 'iothubowner', ttlSecs: 60 });
    expect(parseSas(token)).toMatchObject({ resource, skn: 'iothubowner' });
    expect(verifySas(token, key, () => true)).toMatchObject({ ok: true });
  });

  it('names why a token is refused', () => {
    expect(verifySas(createSas(resource, key), randomBytes(32).toString('base64'), () => true)).toEqual({ ok: false, reason: 'signature does not match' });
    expect(verifySas(createSas(resource, key, { expiry: 1000 }), key, () => true)).toEqual({ ok: false, reason: 'token expired' });
    expect(verifySas(createSas(resource, key), key, () => false)).toMatchObject({ ok: false, reason: expect.stringContaining('another resource') });
    expect(verifySas('Bearer abc', key, () => true)).toEqual({ ok: false, reason: 'not a SharedAccessSignature token' });
    expect(verifySas(undefined, key, () => true).ok).toBe(false);
  });

  it('detects a tampered expiry', () => {
    const token = createSas(resource, key, { ttlSecs: 60 });
    const forged = token.replace(/se=(\d+)/, (_m, se) => `se=${Number(se) + 3600}`);
    expect(verifySas(forged, key, () => true)).toEqual({ ok: false, reason: 'signature does not match' });
  });
});

describe('VerifiedSasCache', () => {
  it('answers like verifySas, and still checks expiry and resource on a cached token', async () => {
    const { VerifiedSasCache } = await import('@enclave-edge/edge-sim/sas');
    const cache = new VerifiedSasCache();
    const token = createSas(resource, key, { ttlSecs: 60 });
    const now = Date.now() / 1000;
    expect(cache.verify(token, key, () => true, now).ok).toBe(true);
    expect(cache.verify(token, key, () => true, now).ok).toBe(true);
    expect(cache.verify(token, key, () => false, now)).toMatchObject({ ok: false });
    expect(cache.verify(token, key, () => true, now + 120)).toEqual({ ok: false, reason: 'token expired' });
    expect(cache.verify(token, randomBytes(32).toString('base64'), () => true, now)).toEqual({ ok: false, reason: 'signature does not match' });
  });
});
