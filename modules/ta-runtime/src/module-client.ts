/** The ModuleClient surface ta-runtime uses (the real SDK client satisfies it). */
import type { Message, Twin } from 'azure-iot-device';

export interface MethodRequestLike {
  methodName: string;
  payload?: unknown;
}
export interface MethodResponseLike {
  send(status: number, payload?: unknown): Promise<void>;
}

export interface EdgeModuleClient {
  open(): Promise<unknown>;
  close(): Promise<unknown>;
  getTwin(): Promise<Twin>;
  onMethod(name: string, cb: (req: MethodRequestLike, res: MethodResponseLike) => void): void;
  sendOutputEvent(output: string, msg: Message): Promise<unknown>;
  on(event: 'inputMessage', listener: (inputName: string, msg: Message) => void): unknown;
  on(event: 'error' | 'disconnect', listener: (err?: Error) => void): unknown;
  complete?(msg: Message): Promise<unknown>;
}
