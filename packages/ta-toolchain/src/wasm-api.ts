/** The few WebAssembly JS-API members we use (the Node type definitions do not declare them without the DOM lib). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
export interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmApi {
  Module: { new (bytes: Uint8Array): WasmModule; imports(m: WasmModule): { module: string; name: string; kind: string }[]; exports(m: WasmModule): { name: string; kind: string }[] };
  instantiate(bytes: Uint8Array, imports: Record<string, Record<string, unknown>>): Promise<{ instance: { exports: Record<string, unknown> } }>;
}
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
