/**
 * Cap a Wasm module's linear memory: rewrite the memory section so its maximum is at most
 * `maxPages` (64 KiB each). Worker heap limits do not cover Wasm memory (it lives outside the
 * V8 heap), so the cap has to be in the module itself; then memory.grow past it just fails.
 * Also refuses imported memories and modules declaring more than one memory.
 */
export const WASM_PAGE_BYTES = 65536;

/** The pages a Wasm TA's memory may grow to at most: its manifest's heapMb (at least one page). */
export function wasmMaxPagesFor(heapMb: number): number {
  return Math.max(1, Math.floor((heapMb * 1024 * 1024) / WASM_PAGE_BYTES));
}

function readLeb(b: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= b.length) throw new Error('truncated LEB128');
    const byte = b[pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [result, pos];
    if (shift > 35) throw new Error('LEB128 too long');
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export interface CappedModule {
  bytes: Uint8Array;
  /** Pages the module asked for at start. */
  initialPages: number;
  /** The maximum the module declared (undefined: none). */
  declaredMaxPages: number | undefined;
}

export function capWasmMemory(module: Uint8Array, maxPages: number): CappedModule {
  if (module.length < 8 || module[0] !== 0 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) {
    throw new Error('not a WebAssembly module (bad magic)');
  }
  let pos = 8;
  while (pos < module.length) {
    const id = module[pos]!;
    const [size, body] = readLeb(module, pos + 1);
    const end = body + size;
    if (end > module.length) throw new Error('truncated section');
    if (id === 5) {
      const [count, p] = readLeb(module, body);
      if (count !== 1) throw new Error(`a TA module must declare exactly one memory (found ${count})`);
      const flags = module[p]!;
      if (flags !== 0 && flags !== 1) throw new Error('shared or 64-bit memories are not supported');
      const [initial, p2] = readLeb(module, p + 1);
      let declared: number | undefined;
      if (flags === 1) declared = readLeb(module, p2)[0];
      if (initial > maxPages) throw new Error(`the module needs ${initial} memory pages at start, more than the heap limit allows (${maxPages})`);
      const max = declared === undefined ? maxPages : Math.min(declared, maxPages);
      const newBody = [...leb(1), 1, ...leb(initial), ...leb(max)];
      const rest = module.subarray(end);
      const out = new Uint8Array(pos + 1 + leb(newBody.length).length + newBody.length + rest.length);
      out.set(module.subarray(0, pos), 0);
      let o = pos;
      out[o++] = 5;
      for (const x of leb(newBody.length)) out[o++] = x;
      for (const x of newBody) out[o++] = x;
      out.set(rest, o);
      return { bytes: out, initialPages: initial, declaredMaxPages: declared };
    }
    pos = end;
  }
  return { bytes: module, initialPages: 0, declaredMaxPages: undefined };
}
