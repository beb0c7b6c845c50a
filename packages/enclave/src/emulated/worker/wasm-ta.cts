/** Wasm TAs (packages/ta-sdk/WASM-ABI.md): only the `ta.*` imports, memory capped by limits.heapMb. */
import type { Value } from '@enclave-edge/ta-sdk';
import type { WorkerInit } from '../wire/protocol.cjs';
import { capWasmMemory, WASM_PAGE_BYTES } from '../wire/wasm-memory.cjs';
import type { ContextBase } from './context.cjs';
import type { LoadedTA, WorkerSession } from './loaded-ta.cjs';
import { codedError } from './rpc.cjs';

const ALLOWED_IMPORTS = new Set(['ta.result', 'ta.log', 'ta.random', 'ta.untrusted_time_ms', 'env.abort']);
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

export function loadWasmTA(init: WorkerInit, base: ContextBase): LoadedTA {
  let capped;
  try {
    capped = capWasmMemory(init.code, init.wasmMaxPages ?? 256);
  } catch (err) {
    throw codedError('BAD_FORMAT', `Wasm TA refused: ${(err as Error).message}`);
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(capped.bytes);
  } catch (err) {
    throw codedError('BAD_FORMAT', `Wasm TA does not compile: ${(err as Error).message}`);
  }
  for (const imp of WebAssembly.Module.imports(module)) {
    const name = `${imp.module}.${imp.name}`;
    if (!ALLOWED_IMPORTS.has(name) || imp.kind !== 'function') {
      throw codedError('BAD_FORMAT', `Wasm TA imports "${name}" (${imp.kind}), which the TA ABI does not provide`);
    }
  }
  const exportNames = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  for (const need of ['memory', 'ta_alloc', 'ta_invoke']) {
    if (!exportNames.has(need)) throw codedError('BAD_FORMAT', `Wasm TA does not export "${need}"`);
  }

  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let result: string | undefined;
  let abortMessage: string | undefined;
  let instance: WebAssembly.Instance | undefined;
  const mem = () => instance!.exports.memory as WebAssembly.Memory;
  const str = (ptr: number, len: number) => decoder.decode(new Uint8Array(mem().buffer, ptr >>> 0, len >>> 0));
  const imports = {
    ta: {
      result: (ptr: number, len: number) => {
        result = str(ptr, len);
      },
      log: (level: number, ptr: number, len: number) => base.log[LEVELS[level] ?? 'info'](str(ptr, len)),
      random: (ptr: number, len: number) => {
        new Uint8Array(mem().buffer, ptr >>> 0, len >>> 0).set(base.random(len >>> 0));
      },
      untrusted_time_ms: () => base.untrustedTime.now(),
    },
    env: {
      abort: (_msg: number, _file: number, line: number, col: number) => {
        abortMessage = `aborted at ${line}:${col}`;
        throw new WebAssembly.RuntimeError(abortMessage);
      },
    },
  };
  const instantiate = () => {
    // Let go of the old instance first: its memory can then be collected if V8 needs the
    // address space for the new one (with the trap handler each memory reserves its guard regions).
    instance = undefined;
    instance = new WebAssembly.Instance(module, imports);
    const create = instance.exports.ta_create;
    if (typeof create === 'function') create();
  };

  return {
    async create() {
      try {
        instantiate();
      } catch (err) {
        throw codedError('TA_ERROR', `Wasm TA failed to start: ${(err as Error).message}`);
      }
    },
    open() {
      return undefined;
    },
    close() {
      return undefined;
    },
    invoke(_session: WorkerSession, command: string, params: Value) {
      if (containsBinary(params)) throw codedError('BAD_PARAMETERS', 'Wasm TAs take JSON parameters only (no Uint8Array)');
      const json = JSON.stringify(params ?? null);
      const cmd = encoder.encode(command);
      const par = encoder.encode(json);
      result = undefined;
      abortMessage = undefined;
      let rc: number;
      if (!instance) {
        try {
          instantiate();
        } catch (err) {
          throw codedError('TA_ERROR', `Wasm TA failed to start again after a trap: ${(err as Error).message}`);
        }
      }
      try {
        const alloc = instance!.exports.ta_alloc as (n: number) => number;
        const ptr = alloc(cmd.length + par.length) >>> 0;
        const view = new Uint8Array(mem().buffer, ptr, cmd.length + par.length);
        view.set(cmd, 0);
        view.set(par, cmd.length);
        rc = (instance!.exports.ta_invoke as (a: number, b: number, c: number, d: number) => number)(ptr, cmd.length, ptr + cmd.length, par.length);
      } catch (err) {
        // a trap leaves the instance in an unknown state: start it afresh
        const why = abortMessage ?? (err as Error).message;
        const maxPages = Math.min(capped.declaredMaxPages ?? Infinity, init.wasmMaxPages ?? 256);
        // A trap with memory at (or within a growth step of) its cap is taken as exhaustion:
        // allocators trap once memory.grow fails, which Wasm does not report otherwise.
        const full = maxPages - mem().buffer.byteLength / WASM_PAGE_BYTES <= Math.max(16, maxPages / 8);
        try {
          instantiate();
        } catch {
          /* the next call reports it */
        }
        if (full) throw codedError('OUT_OF_MEMORY', `Wasm TA ran out of memory (${maxPages} pages, limits.heapMb) and was restarted: ${why}`);
        throw codedError('TA_ERROR', `Wasm TA trapped: ${why}`);
      }
      if (rc === 0) {
        if (result === undefined) return null;
        try {
          return JSON.parse(result) as Value;
        } catch {
          throw codedError('TA_ERROR', 'Wasm TA result is not valid JSON');
        }
      }
      const message = result ?? `command "${command}" failed (code ${rc})`;
      throw codedError(rc === 1 ? 'BAD_PARAMETERS' : rc === 2 ? 'ITEM_NOT_FOUND' : 'TA_ERROR', message);
    },
    async destroy() {},
  };
}

/**
 * Whether a boundary Value (already checked by copyValue: JSON or Uint8Array, bounded depth)
 * holds a Uint8Array anywhere. A scan, so that JSON.stringify keeps its fast path: with a
 * replacer function it is several times slower on large params.
 */
function containsBinary(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x !== null && typeof x === 'object' && containsBinary(x)) return true;
    }
    return false;
  }
  for (const k of Object.keys(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object' && containsBinary(x)) return true;
  }
  return false;
}
