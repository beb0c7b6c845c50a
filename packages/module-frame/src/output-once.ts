/**
 * Single-attempt output sends, for a caller that keeps its outputs in order itself
 * (host-module's pipelines): the SDK's ModuleClient retries each failed send on its own timer.
 */
import type mqtt from 'azure-iot-device-mqtt';
import type { Message } from 'azure-iot-device';
import { EnclaveEdgeError } from '@enclave-edge/errors';

/**
 * The SDK's transient errors (its default retry filter): the send did not happen, or may not
 * have (no PUBACK before the connection dropped). They reject UNAVAILABLE, worth another try.
 */
const TRANSIENT = new Set(['NotConnectedError', 'TimeoutError', 'ServiceUnavailableError', 'InternalServerError', 'ThrottlingError']);

/**
 * Send an output once, without the SDK's retries: ModuleClient.sendOutputEvent retries each
 * failed send on its own timer, so after a dropped connection an older output can leave after
 * newer ones. A caller that must keep order re-sends itself (host-module's pipelines).
 */
export function sendOutputOnce(transport: InstanceType<typeof mqtt.Mqtt>, output: string, msg: Message): Promise<void> {
  return new Promise((resolve, reject) => {
    transport.sendOutputEvent(output, msg, (err?: Error) => {
      if (!err) return resolve();
      reject(TRANSIENT.has(err.name) ? new EnclaveEdgeError('UNAVAILABLE', `edgeHub did not acknowledge the output: ${err.message}`) : err);
    });
  });
}
