/** What the worker's call loop needs from a loaded TA, JS or Wasm alike. */
import type { TACaller, Value } from '@enclave-edge/ta-sdk';

export interface WorkerSession {
  readonly id: string;
  readonly state: Record<string, unknown>;
}

export interface LoadedTA {
  create(): Promise<void>;
  /** Hooks return undefined when the TA has none, so the call path skips an await. */
  open(session: WorkerSession, params: Value): Promise<unknown> | undefined;
  close(session: WorkerSession): Promise<unknown> | undefined;
  /** The handler's own return value (maybe a promise); throws synchronously for unknown commands. */
  invoke(session: WorkerSession, command: string, params: Value, caller: TACaller): unknown;
  destroy(): Promise<void>;
}
