/** The part of azure-iot-device's ModuleClient that TAClient needs (so any transport fits). */
import type { Message, Twin } from 'azure-iot-device';

export interface ModuleClientLike {
  sendOutputEvent(outputName: string, message: Message): Promise<unknown>;
  on(event: 'inputMessage', listener: (inputName: string, msg: Message) => void): unknown;
  removeListener(event: 'inputMessage', listener: (inputName: string, msg: Message) => void): unknown;
  complete?(msg: Message): Promise<unknown>;
}
