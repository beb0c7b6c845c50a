/** Messages between the runtime and a TA's own process (its worker host, ../child/main.cts). Internal. */
import type { WorkerBoot } from './protocol.cjs';

export type ToChild =
  /** Becomes this TA's process: from here it serves that TA only (and, as root, drops to its uid). */
  | { t: 'assign'; ta: string; uid?: number; gid?: number }
  | { t: 'spawn'; wid: number; heapMb: number; stackMb: number; boot: WorkerBoot; name: string }
  | { t: 'post'; wid: number; m: unknown }
  | { t: 'terminate'; wid: number };

export type FromChild =
  | { t: 'hello'; pid: number }
  | { t: 'msg'; wid: number; m: unknown }
  | { t: 'error'; wid: number; code: string; message: string }
  | { t: 'exit'; wid: number; code: number };
