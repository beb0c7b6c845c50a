/** What the worker's call loop needs from a loaded TA, JS or Wasm alike. */
import type { Value } from '@enclave-edge/ta-sdk';

export interface WorkerSession {
  readonly id: string;
  readonly state: Record<string, unknown>;
}

export interface LoadedTA {
  create(): Promise<void>;
  open(session: WorkerSession, params: Value): Promise<void>;
  close(session: WorkerSession): Promise<void>;
  invoke(session: WorkerSession, command: string, params: Value): Promise<unknown>;
  destroy(): Promise<void>;
}
