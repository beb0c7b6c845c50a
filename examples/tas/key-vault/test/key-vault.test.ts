import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTA, loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('key-vault TA', () => {
  let ta: TAForTests;
  beforeAll(async () => {
    const { bundle } = await buildTA(dir, { write: false });
    ta = await loadTAForTests(bundle);
  });

  it('put, get, list, delete strings and binary', async () => {
    expect(await ta.invoke('put', { name: 'db.password', value: 's3cret' })).toEqual({ name: 'db.password', created: true });
    expect(await ta.invoke('put', { name: 'db.password', value: 'n3w' })).toEqual({ name: 'db.password', created: false });
    const bin = new Uint8Array([1, 2, 3, 0, 255]);
    await ta.invoke('put', { name: 'tls.key', value: bin });
    expect(await ta.invoke('get', { name: 'db.password' })).toEqual({ name: 'db.password', value: 'n3w' });
    expect(await ta.invoke('get', { name: 'tls.key' })).toEqual({ name: 'tls.key', value: bin });
    expect(await ta.invoke('list')).toEqual({ names: ['db.password', 'tls.key'] });
    expect(await ta.invoke('list', { prefix: 'db.' })).toEqual({ names: ['db.password'] });
    expect(await ta.invoke('delete', { name: 'db.password' })).toEqual({ name: 'db.password', deleted: true });
    expect(await ta.invoke('delete', { name: 'db.password' })).toEqual({ name: 'db.password', deleted: false });
    await expect(ta.invoke('get', { name: 'db.password' })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringMatching(/db\.password/) });
  });

  it('never logs secret values', async () => {
    await ta.invoke('put', { name: 'api', value: 'TOPSECRET-VALUE' });
    expect(JSON.stringify(ta.context.logs)).not.toContain('TOPSECRET-VALUE');
  });

  it('refuses bad names and values', async () => {
    await expect(ta.invoke('put', { name: '../etc', value: 'x' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(ta.invoke('put', { name: 'n', value: 42 })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/string or binary/) });
    await expect(ta.invoke('put', { name: 'big', value: 'x'.repeat(70_000) })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
