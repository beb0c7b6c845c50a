/**
 * A TA's binary data (ArrayBuffer backing stores: Uint8Array, Wasm memory) lives outside the V8
 * heap that `heapMb` bounds (threat model O14). The worker measures its own isolate's array
 * buffers at its entry points and on a timer, and exits with this code past the limit; the
 * host reports that as OUT_OF_MEMORY. A synchronous loop that never calls into the context is
 * only caught when its call ends.
 */
export const BINARY_MEMORY_EXIT_CODE = 86;

/** ArrayBuffer bytes a TA may hold: its heap budget again, plus room for the runtime's own buffers. */
export function binaryLimitBytes(heapMb: number): number {
  return (heapMb + 16) * 1024 * 1024;
}
