/** How an enclave worker thread is spawned: the one place, used in-process and inside a TA's own process. */
import { Worker } from 'node:worker_threads';
import type { WorkerBoot } from './protocol.cjs';

export interface WorkerLimits {
  heapMb: number;
  stackMb: number;
}

export function spawnWorkerThread(file: string, limits: WorkerLimits, boot: WorkerBoot, name: string): Worker {
  return new Worker(file, {
    // No inherited loaders/flags, no environment, no shared env: the enclave starts bare.
    execArgv: [],
    env: {},
    argv: [],
    stdout: false,
    stderr: false,
    workerData: boot,
    resourceLimits: { maxOldGenerationSizeMb: limits.heapMb, stackSizeMb: limits.stackMb },
    name,
  });
}
