import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain/test-harness';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('key-vault TA', () => {
  let ta: TAForTests;
  beforeAll(async () => {
    const { bundle } = await buildTA(dir, { write: false });
    ta = await loadTAForTests(bundle);
  });
  afterAll(() => ta?.destroy());

  it('put, get, list, delete strings and binary', async () => {
    expect(await ta.invokeConfidential('put', { name: 'db.password', value: 's3cret' })).toEqual({ name: 'db.password', created: true });
    expect(await ta.invokeConfidential('put', { name: 'db.password', value: 'n3w' })).toEqual({ name: 'db.password', created: false });
    const bin = new Uint8Array([1, 2, 3, 0, 255]);
    await ta.invokeConfidential('put', { name: 'tls.key', value: bin });
    expect(await ta.invokeConfidential('get', { name: 'db.password' })).toEqual({ name: 'db.password', value: 'n3w' });
    expect(await ta.invokeConfidential('get', { name: 'tls.key' })).toEqual({ name: 'tls.key', value: bin });
    expect(await ta.invoke('list')).toEqual({ names: ['db.password', 'tls.key'] });
    expect(await ta.invoke('list', { prefix: 'db.' })).toEqual({ names: ['db.password'] });
    expect(await ta.invoke('delete', { name: 'db.password' })).toEqual({ name: 'db.password', deleted: true });
    expect(await ta.invoke('delete', { name: 'db.password' })).toEqual({ name: 'db.password', deleted: false });
    await expect(ta.invokeConfidential('get', { name: 'db.password' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringMatching(/db\.password/) });
  });

  it('never logs secret values', async () => {
    await ta.invokeConfidential('put', { name: 'api', value: 'TOPSECRET-VALUE' });
    expect(ta.logs.length).toBeGreaterThan(0); // it does log, just never the value
    expect(JSON.stringify(ta.logs)).not.toContain('TOPSECRET-VALUE');
  });

  it('put and get answer only confidential calls: a plain call is ACCESS_DENIED', async () => {
    await expect(ta.invoke('put', { name: 'plain', value: 'x' })).rejects.toMatchObject({ code: 'ACCESS_DENIED', message: expect.stringMatching(/only confidential calls/) });
    await expect(ta.invoke('get', { name: 'api' })).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    expect(await ta.invoke('list', { prefix: 'plain' })).toEqual({ names: [] });
  });

  it('refuses bad names and values', async () => {
    await expect(ta.invokeConfidential('put', { name: '../etc', value: 'x' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(ta.invokeConfidential('put', { name: 'n', value: 42 })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/string or binary/) });
    await expect(ta.invokeConfidential('put', { name: 'big', value: 'x'.repeat(70_000) })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
