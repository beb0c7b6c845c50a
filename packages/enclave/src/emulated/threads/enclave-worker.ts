/**
 * What the host side needs of an enclave worker, wherever it runs: a worker thread in this
 * process, or a worker thread inside the TA's own process (process/ta-process.ts).
 */
import type { WorkerBoot } from '../wire/protocol.cjs';
import type { WorkerShape } from './worker-shape.js';

export interface EnclaveWorker {
  readonly threadId: number;
  postMessage(m: unknown): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: (...args: any[]) => void): unknown;
  off(event: string, listener: (...args: any[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
  ref(): void;
  unref(): void;
  terminate(): Promise<number>;
}

/** Where enclave workers are spawned. */
export interface WorkerHost {
  spawn(shape: WorkerShape, boot: WorkerBoot, name: string): EnclaveWorker;
}

/**
 * The error a worker reports when its memory ran out: a worker thread's own heap limit
 * (Node's code), or the TA's whole process ending out of memory.
 */
export const WORKER_OUT_OF_MEMORY = 'ERR_WORKER_OUT_OF_MEMORY';
