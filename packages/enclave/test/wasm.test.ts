import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle, testManifest } from '@enclave-edge/enclave/testing';
import { capWasmMemory } from '@enclave-edge/enclave/internals';
import { compileWasmTA } from './fixtures/wasm-ta.js';


/** A hand-assembled module importing something outside the TA ABI (wasi fd_write). */
function moduleImporting(mod: string, name: string): Uint8Array {
  const str = (s: string) => [s.length, ...Buffer.from(s)];
  const type = [0x01, 0x60, 0x00, 0x00];
  const imp = [0x01, ...str(mod), ...str(name), 0x00, 0x00];
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0x01, type.length, ...type, 0x02, imp.length, ...imp]);
}

describe('Wasm TAs (emulated backend)', () => {
  let wasm: Uint8Array;
  const logs: string[] = [];
  let e: EmulatedEnclave;
  const backend = new EmulatedBackend();
  beforeAll(async () => {
    wasm = await compileWasmTA();
    e = await backend.create(makeTestBundle(wasm, { name: 'wasm-ta', runtime: 'wasm', limits: { heapMb: 4, callTimeoutMs: 1000 } }), {
      log: (level, ta, message) => logs.push(`${level}:${ta}:${message}`),
    });
  });
  afterAll(() => e?.destroy());

  it('invokes commands through the ABI with JSON in and out', async () => {
    expect(await e.invoke(undefined, 'echo', { a: [1, 'two'] })).toEqual({ a: [1, 'two'] });
    expect(await e.invoke(undefined, 'echo')).toBeNull();
    expect(await e.invoke(undefined, 'random')).toBeGreaterThan(8);
  });

  it('maps return codes to the taxonomy with the TA message', async () => {
    await expect(e.invoke(undefined, 'fail')).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: 'the wasm TA refused these parameters' });
    await expect(e.invoke(undefined, 'nope')).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: 'no such command: nope' });
  });

  it('refuses binary params for Wasm TAs, at any depth, and keeps serving', async () => {
    const refused = { code: 'BAD_PARAMETERS', message: 'Wasm TAs take JSON parameters only (no Uint8Array)' };
    await expect(e.invoke(undefined, 'echo', new Uint8Array(2))).rejects.toMatchObject(refused);
    await expect(e.invoke(undefined, 'echo', { a: [1, { b: [null, new Uint8Array(1)] }] })).rejects.toMatchObject(refused);
    await expect(e.invoke(undefined, 'echo', [[[Buffer.from('x')]]])).rejects.toMatchObject(refused);
    expect(await e.invoke(undefined, 'echo', { a: [1, { b: [null, 'x'] }] })).toEqual({ a: [1, { b: [null, 'x'] }] });
  });

  it('logs through ta.log tagged with the TA name', async () => {
    await e.invoke(undefined, 'log');
    await vi.waitUntil(() => logs.includes('warn:wasm-ta:hello from wasm'), { timeout: 20_000, interval: 10 });
  });

  it('a trap is TA_ERROR and the instance starts afresh', async () => {
    expect(Number(await e.invoke(undefined, 'calls'))).toBeGreaterThan(1);
    await expect(e.invoke(undefined, 'trap')).rejects.toMatchObject({ code: 'TA_ERROR' });
    expect(await e.invoke(undefined, 'calls')).toBe(1);
  });

  it('memory is capped by limits.heapMb: growth past it is OUT_OF_MEMORY', async () => {
    await expect(e.invoke(undefined, 'grow')).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    expect(await e.invoke(undefined, 'echo', 1)).toBe(1);
  });

  it('a runaway Wasm call times out and the enclave restarts (on a prepared Wasm standby worker)', async () => {
    await backend.prewarm(testManifest({ runtime: 'wasm', limits: { heapMb: 4 } }));
    const before = e.lastStartup!.threadId;
    await expect(e.invoke(undefined, 'spin')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await e.invoke(undefined, 'echo', 2)).toBe(2);
    expect(e.lastStartup).toMatchObject({ origin: 'standby', lockdownMs: 0 });
    expect(e.lastStartup!.threadId).not.toBe(before);
  });

  it('refuses modules importing anything outside the TA ABI, naming the import', async () => {
    const bad = moduleImporting('wasi_snapshot_preview1', 'fd_write');
    const err = (await backend.create(makeTestBundle(bad, { runtime: 'wasm' })).catch((x: unknown) => x)) as { code: string; message: string };
    expect(err.code).toBe('BAD_FORMAT');
    expect(err.message).toContain('wasi_snapshot_preview1.fd_write');
  });

  it('refuses bytes that are not Wasm', async () => {
    await expect(backend.create(makeTestBundle(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), { runtime: 'wasm' }))).rejects.toMatchObject({ code: 'BAD_FORMAT' });
  });

  it('capWasmMemory rewrites the memory maximum and keeps the module valid', () => {
    const capped = capWasmMemory(wasm, 3);
    expect(capped.bytes).not.toEqual(wasm);
    const inst = new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(capped.bytes)), {
      ta: { result() {}, log() {}, random() {} },
      env: { abort() {} },
    });
    const mem = inst.exports.memory as WebAssembly.Memory;
    const pages = mem.buffer.byteLength / 65536;
    expect(mem.grow(3 - pages)).toBe(pages);
    expect(() => mem.grow(1)).toThrow(RangeError);
    expect(() => capWasmMemory(wasm, 0)).toThrow(/more than the heap limit/);
  });
});
