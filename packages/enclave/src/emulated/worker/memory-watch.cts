/** The worker's side of the binary-memory limit (see ../binary-memory.cts). */
import { BINARY_MEMORY_EXIT_CODE, binaryLimitBytes } from '../wire/binary-memory.cjs';

let limit = Infinity;
let last = 0;

/** Start watching once the worker knows its TA (the limit follows its heapMb). */
export function watchBinaryMemory(heapMb: number): void {
  limit = binaryLimitBytes(heapMb);
  setInterval(() => checkBinaryMemory(true), 100).unref();
  checkBinaryMemory(true);
}

/** Cheap unless due: process.memoryUsage() costs a few µs, so at most once per millisecond unless forced. */
export function checkBinaryMemory(force = false): void {
  if (limit === Infinity) return;
  const now = performance.now();
  if (!force && now - last < 1) return;
  last = now;
  if (process.memoryUsage().arrayBuffers > limit) process.exit(BINARY_MEMORY_EXIT_CODE);
}
