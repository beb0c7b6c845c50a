/**
 * What an enclave worker is fixed to at spawn time (its shape: runtime, lockdown flavour,
 * resource limits) and the one place enclave workers are spawned.
 */
import type { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { TAManifest } from '@enclave-edge/bundle/types';
import type { WorkerBoot, WorkerPrep } from '../wire/protocol.cjs';
import { sesScript } from './ses-source.js';
import { spawnWorkerThread } from '../wire/worker-spawn.cjs';
import type { WorkerHost } from './enclave-worker.js';

export const RUNTIME_HEAP_FLOOR_MB = 16;

export interface WorkerShape {
  runtime: 'js' | 'wasm';
  /** lockdown's errorTaming differs for debug TAs. */
  debug: boolean;
  /** The worker's resourceLimits: they cannot change after spawn. */
  heapMb: number;
  stackMb: number;
}

export function shapeOf(m: Pick<TAManifest, 'runtime' | 'debug' | 'limits'>): WorkerShape {
  return {
    runtime: m.runtime === 'wasm' ? 'wasm' : 'js',
    debug: !!m.debug,
    // JS: the TA's heap is the worker's heap, with a floor the runtime itself needs (SES, Node
    // bootstrap). Wasm: the TA's heap is its linear memory (capped in the module); the worker
    // keeps a small fixed heap for the runtime.
    heapMb: m.runtime === 'wasm' ? RUNTIME_HEAP_FLOOR_MB : Math.max(RUNTIME_HEAP_FLOOR_MB, m.limits.heapMb),
    // Node's worker bootstrap itself needs about 1 MiB of stack; smaller values crash the process.
    stackMb: Math.max(1, m.limits.stackKb / 1024),
  };
}

export function shapeKey(s: WorkerShape): string {
  return `${s.runtime}${s.debug ? '-debug' : ''}:heap${s.heapMb}:stack${s.stackMb}`;
}

export function prepFor(s: WorkerShape): WorkerPrep {
  return s.runtime === 'js' ? { ses: sesScript(), debug: s.debug } : { debug: s.debug };
}

/** The enclave worker's entry (also spawned inside a TA's own process, see ../child/main.cts). */
export const WORKER_FILE = fileURLToPath(new URL('../worker/main.cjs', import.meta.url));

export function spawnEnclaveWorker(shape: WorkerShape, boot: WorkerBoot, name: string): Worker {
  return spawnWorkerThread(WORKER_FILE, shape, boot, name);
}

/** Workers as threads of this process (the `thread` isolation: no process boundary). */
export const THREAD_HOST: WorkerHost = { spawn: spawnEnclaveWorker };
