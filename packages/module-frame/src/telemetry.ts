/** Typed telemetry: JSON, utf-8, the event type as application property and in the body. */
import type { Message } from 'azure-iot-device';
import { jsonMessage } from '@enclave-edge/ta-client';

/** Send a telemetry message with `type` as application property, JSON, utf-8. */
export function sendTelemetry(
  client: { sendOutputEvent(output: string, msg: Message): Promise<unknown> },
  output: string,
  type: string,
  body: Record<string, unknown>,
): Promise<unknown> {
  return client.sendOutputEvent(output, jsonMessage(type, { type, ...body, at: new Date().toISOString() }));
}
