import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain/test-harness';
import { generateSigningKey, pemSigner, verifyBundle } from '@enclave-edge/bundle';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('hello TA', () => {
  let ta: TAForTests;
  let bundle: Uint8Array;
  const key = generateSigningKey();
  const trust = { trustedSigners: [key.signerId] };
  beforeAll(async () => {
    ({ bundle } = await buildTA(dir, { write: false, signer: pemSigner(key.privateKeyPem) }));
    ta = await loadTAForTests(bundle, { trustedSigners: [key.signerId] });
  });
  afterAll(() => ta?.destroy());

  it('builds into a signed bundle that verifies', () => {
    const v = verifyBundle(bundle, trust);
    expect(v.manifest).toMatchObject({ name: 'hello', runtime: 'js', debug: false });
    expect(v.sourceMap).toBeUndefined();
  });

  it('ping and echo (JSON and binary)', async () => {
    expect(await ta.invoke('ping')).toBe('pong');
    expect(await ta.invoke('echo', { a: [1, 'two', null, true] })).toEqual({ a: [1, 'two', null, true] });
    const bin = new Uint8Array([0, 1, 255]);
    expect(await ta.invoke('echo', { bin })).toEqual({ bin });
  });

  it('whoami reports the measured identity', async () => {
    expect(await ta.invoke('whoami')).toMatchObject({ name: 'hello', measurement: verifyBundle(bundle, trust).measurement });
  });

  it('an unknown command is ITEM_NOT_FOUND', async () => {
    await expect(ta.invoke('nope')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
  });
});
