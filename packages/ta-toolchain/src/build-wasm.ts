/** AssemblyScript TA → one Wasm module (packages/ta-sdk/WASM-ABI.md), compiled in-process with asc. */
import { Wasm, type WasmModule } from './wasm-api.js';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { CompiledCode } from './build-js.js';

interface AscResult {
  error: Error | null;
  stderr: { toString(): string };
}
interface Asc {
  main(argv: string[], options: { writeFile(name: string, contents: Uint8Array | string, baseDir: string): void; stdout?: unknown; stderr?: unknown }): Promise<AscResult>;
}

/** The only imports a Wasm TA may have (WASM-ABI.md). */
export const ALLOWED_WASM_IMPORTS = new Set(['ta.result', 'ta.log', 'ta.random', 'ta.untrusted_time_ms', 'env.abort']);
export const REQUIRED_WASM_EXPORTS = ['memory', 'ta_alloc', 'ta_invoke'];

/** Refuse a module whose imports or exports break the ABI, naming the offender. */
export function checkWasmAbi(code: Uint8Array): void {
  let mod: WasmModule;
  try {
    mod = new Wasm.Module(code);
  } catch (e) {
    throw new EnclaveEdgeError('BAD_FORMAT', `not a valid WebAssembly module: ${(e as Error).message}`);
  }
  for (const imp of Wasm.Module.imports(mod)) {
    const name = `${imp.module}.${imp.name}`;
    if (!ALLOWED_WASM_IMPORTS.has(name)) throw new EnclaveEdgeError('POLICY_VIOLATION', `Wasm TA imports "${name}", which the TA ABI does not provide (allowed: ${[...ALLOWED_WASM_IMPORTS].join(', ')})`);
  }
  const exports = new Set(Wasm.Module.exports(mod).map((e) => e.name));
  for (const need of REQUIRED_WASM_EXPORTS) {
    if (!exports.has(need)) throw new EnclaveEdgeError('BAD_FORMAT', `Wasm TA does not export "${need}" (required by the TA ABI)`);
  }
}

export async function buildWasm(projectDir: string, entry: string, debug: boolean, heapMb: number): Promise<CompiledCode> {
  const spec = 'assemblyscript/asc';
  const asc = ((await import(spec)) as { default: Asc }).default;
  const outputs = new Map<string, Uint8Array>();
  const pages = Math.min(65536, heapMb * 16); // 64 KiB pages
  const argv = [
    entry,
    '--baseDir', projectDir,
    '--outFile', 'ta.wasm',
    '--runtime', 'incremental',
    '--maximumMemory', String(pages),
    '--noColors',
    ...(debug ? ['--debug', '--sourceMap'] : ['--optimizeLevel', '3', '--shrinkLevel', '1', '--noAssert']),
  ];
  const { error, stderr } = await asc.main(argv, {
    writeFile(name, contents) {
      outputs.set(name, typeof contents === 'string' ? new TextEncoder().encode(contents) : contents);
    },
  });
  if (error) throw new EnclaveEdgeError('BAD_PARAMETERS', `AssemblyScript build failed: ${error.message}\n${stderr.toString().trim()}`);
  const code = outputs.get('ta.wasm');
  if (!code) throw new EnclaveEdgeError('INTERNAL', 'asc produced no ta.wasm');
  checkWasmAbi(code);
  const out: CompiledCode = { code };
  const map = outputs.get('ta.wasm.map');
  if (debug && map) out.sourceMap = map;
  return out;
}
