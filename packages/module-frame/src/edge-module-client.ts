/** The ModuleClient surface the enclave-edge modules use (the real SDK client satisfies it). */
import type { Message, Twin } from 'azure-iot-device';
import type { ModuleClientLike } from '@enclave-edge/ta-client';
import type { UnknownMethodHandler } from './unknown-methods.js';

export interface MethodRequestLike {
  methodName: string;
  payload?: unknown;
}
export interface MethodResponseLike {
  send(status: number, payload?: unknown): Promise<void>;
}

/** The ModuleClient surface the enclave-edge modules use (the real SDK client satisfies it). */
export interface EdgeModuleClient extends ModuleClientLike {
  open(): Promise<unknown>;
  close(): Promise<unknown>;
  getTwin(): Promise<Twin>;
  onMethod(name: string, cb: (req: MethodRequestLike, res: MethodResponseLike) => void): void;
  on(event: 'inputMessage', listener: (inputName: string, msg: Message) => void): unknown;
  on(event: 'error' | 'disconnect', listener: (err?: Error) => void): unknown;
  /** Where the transport can tell (runModule's), calls to methods without a handler go here. */
  onUnknownMethod?: (handler: UnknownMethodHandler) => void;
  /** Where the transport can tell (runModule's): one attempt to send an output, no SDK retries; transient failures reject UNAVAILABLE. */
  sendOutputOnce?: (output: string, msg: Message) => Promise<void>;
}
