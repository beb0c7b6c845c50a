import { describe, expect, it } from 'vitest';
import { buildTA, checkWasmAbi } from '@enclave-edge/ta-toolchain';
import { decodeBundle } from '@enclave-edge/bundle';
import { copyExample, taJson, tempDir, writeFiles } from './helpers.js';

describe('buildTA (AssemblyScript → Wasm TAs)', () => {
  it('compiles reproducibly, caps memory by heapMb, and debug builds carry a source map', async () => {
    const a = tempDir();
    const b = tempDir();
    try {
      const one = await buildTA(copyExample('wasm-stats', a.dir), { write: false });
      const two = await buildTA(copyExample('wasm-stats', b.dir), { write: false });
      expect(two.measurement).toBe(one.measurement);
      const code = decodeBundle(one.bundle).code;
      const mod = new WebAssembly.Module(new Uint8Array(code));
      expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(expect.arrayContaining(['memory', 'ta_alloc', 'ta_invoke', 'ta_create']));
      // heapMb 16 in ta.json → at most 256 pages of 64 KiB
      const noop = () => 0;
      const inst = new WebAssembly.Instance(mod, { ta: { result: noop, log: noop, random: noop, untrusted_time_ms: noop }, env: { abort: noop } });
      const memory = inst.exports.memory as WebAssembly.Memory;
      expect(() => memory.grow(256)).toThrow(RangeError);
      expect(() => memory.grow(256 - memory.buffer.byteLength / 65536)).not.toThrow();
      const dbg = await buildTA(copyExample('wasm-stats', a.dir + '/dbg'), { write: false, debug: true });
      const s = decodeBundle(dbg.bundle);
      expect(s.manifest.debug).toBe(true);
      expect(new TextDecoder().decode(s.sourceMap)).toContain('assembly/index.ts');
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });

  it('an AssemblyScript compile error fails the build with the message', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, { 'ta.json': taJson({ runtime: 'wasm' }), 'assembly/index.ts': 'export function ta_invoke(): i32 { return undefinedThing; }\n' });
      await expect(buildTA(t.dir, { write: false })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/AssemblyScript build failed[\s\S]*undefinedThing/) });
    } finally {
      t.cleanup();
    }
  });

  it('refuses a module importing anything outside the TA ABI, naming the import', () => {
    // (module (type (func (result f64))) (import "env" "seed" (func (type 0))))
    const mod = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7c, 2, 12, 1, 3, 0x65, 0x6e, 0x76, 4, 0x73, 0x65, 0x65, 0x64, 0, 0]);
    expect(() => checkWasmAbi(mod)).toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/imports "env\.seed"/) }));
    expect(() => checkWasmAbi(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]))).toThrow(/does not export "memory"/);
    expect(() => checkWasmAbi(new Uint8Array([1, 2, 3]))).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
  });
});
