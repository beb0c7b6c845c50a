import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTA, checkWasmAbi } from '@enclave-edge/ta-toolchain';
import { loadTAForTests, type TAForTests } from '@enclave-edge/ta-toolchain/test-harness';
import { decodeBundle } from '@enclave-edge/bundle';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('wasm-stats TA (AssemblyScript)', () => {
  let ta: TAForTests;
  let bundle: Uint8Array;
  beforeAll(async () => {
    ({ bundle } = await buildTA(dir, { write: false }));
    ta = await loadTAForTests(bundle);
  });
  afterAll(() => ta?.destroy());

  it('is a Wasm module that imports only the TA ABI', () => {
    const { manifest, code } = decodeBundle(bundle);
    expect(manifest.runtime).toBe('wasm');
    expect(() => checkWasmAbi(code)).not.toThrow();
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(new Uint8Array(code))).map((i) => `${i.module}.${i.name}`);
    for (const i of imports) expect(['ta.result', 'ta.log', 'ta.random', 'ta.untrusted_time_ms', 'env.abort']).toContain(i);
  });

  it('computes min/max/mean/stddev', async () => {
    const r = (await ta.invoke('stats', [2, 4, 4, 4, 5, 5, 7, 9])) as Record<string, number>;
    expect(r).toEqual({ count: 8, min: 2, max: 9, mean: 5, stddev: 2 });
    const s = (await ta.invoke('stats', { values: [1.5, -2.25, 1e6] })) as Record<string, number>;
    expect(s.min).toBe(-2.25);
    expect(s.max).toBe(1e6);
    expect(s.mean).toBeCloseTo((1.5 - 2.25 + 1e6) / 3, 9);
    expect(await ta.invoke('ping')).toBe('pong');
  });

  it('refuses bad input with BAD_PARAMETERS and unknown commands with ITEM_NOT_FOUND', async () => {
    await expect(ta.invoke('stats', [])).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(ta.invoke('stats', ['a'])).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/finite numbers/) });
    await expect(ta.invoke('stats', null)).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(ta.invoke('median', [1])).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringMatching(/unknown command: median/) });
  });
});
