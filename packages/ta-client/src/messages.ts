/** Building and reading edgeHub messages: JSON, utf-8, and a `type` application property. */
import device from 'azure-iot-device';
import type { Message } from 'azure-iot-device';

// azure-iot-device is CommonJS; named imports of it fail under Node's ESM loader.
const { Message: MessageCtor } = device;

export function jsonMessage(type: string, body: unknown, ids?: { messageId?: string; correlationId?: string }): Message {
  const msg = new MessageCtor(typeof body === 'string' ? body : JSON.stringify(body));
  msg.contentType = 'application/json';
  msg.contentEncoding = 'utf-8';
  msg.properties.add('type', type);
  if (ids?.messageId) msg.messageId = ids.messageId;
  if (ids?.correlationId) msg.correlationId = ids.correlationId;
  return msg;
}

/** The body bytes of a received message, whatever form the transport left them in. */
export function messageBytes(msg: { data?: unknown; getBytes?: () => Buffer }): Uint8Array {
  const data = msg.data;
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (typeof msg.getBytes === 'function') return msg.getBytes();
  return new Uint8Array(0);
}

/** The `type` application property of a message, if it has one. */
export function messageType(msg: Message): string | undefined {
  const props = msg.properties;
  if (!props || typeof props.count !== 'function') return undefined;
  for (let i = 0; i < props.count(); i++) {
    const item = props.getItem(i);
    if (item.key === 'type') return String(item.value);
  }
  return undefined;
}
