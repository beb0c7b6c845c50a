/**
 * The SDK's MQTT transport, able to answer a direct method the module has no handler for.
 * The SDK emits `method_<name>` and, with no listener for that name, answers nothing: the caller
 * waits for its whole timeout and learns nothing. A subclass sees such a call (a public
 * `emit`, the documented `sendMethodResponse`) and hands it to the frame, which answers 404 at
 * once with the module's method list. The same subclass is where single-attempt output sends
 * (output-once.ts) reach the transport the client was made with.
 */
import mqtt from 'azure-iot-device-mqtt';
import type { Message } from 'azure-iot-device';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { sendOutputOnce } from './output-once.js';

interface MethodMessage {
  requestId: string;
  methods: { methodName: string };
}

export type UnknownMethodHandler = (methodName: string, respond: (status: number, payload: unknown) => void) => void;

export interface UnknownMethodTransport {
  /** The transport constructor to give ModuleClient.fromEnvironment. */
  Transport: typeof mqtt.Mqtt;
  /** From now on, calls to methods without a handler go to `handler`. */
  onUnknown(handler: UnknownMethodHandler): void;
  /**
   * One attempt to send an output (see sendOutputOnce), on the transport the client was made with;
   * rejects NOT_SUPPORTED before that client exists.
   */
  sendOutputOnce(output: string, msg: Message): Promise<void>;
}

export function unknownMethodTransport(): UnknownMethodTransport {
  let handler: UnknownMethodHandler | undefined;
  let made: MqttAnsweringUnknownMethods | undefined;
  class MqttAnsweringUnknownMethods extends mqtt.Mqtt {
    constructor(...args: ConstructorParameters<typeof mqtt.Mqtt>) {
      super(...args);
      made = this;
    }

    override emit(event: string | symbol, ...args: unknown[]): boolean {
      if (handler && typeof event === 'string' && event.startsWith('method_') && this.listenerCount(event) === 0) {
        const m = args[0] as MethodMessage | undefined;
        if (m?.requestId) {
          handler(m.methods.methodName, (status, payload) => this.sendMethodResponse({ requestId: m.requestId, status, payload } as never, () => {}));
          return true;
        }
      }
      return super.emit(event, ...args);
    }
  }
  return {
    Transport: MqttAnsweringUnknownMethods,
    onUnknown: (h) => (handler = h),
    sendOutputOnce: (output, msg) =>
      made ? sendOutputOnce(made, output, msg) : Promise.reject(new EnclaveEdgeError('NOT_SUPPORTED', 'the module client is not made yet')),
  };
}
