/**
 * How an upstream message is shown to a reader (the `/edge-sim/upstream` stream, `enclave-edge
 * monitor`, also when it reads through the Event Hub-compatible endpoint): one rule for the body.
 */
import type { UpstreamMessage } from './hub/edge-hub.js';

/** Parsed JSON when the content type says JSON, the text when the bytes are UTF-8, else base64. */
export function upstreamBody(bytes: Buffer, contentType: string | undefined): { body: unknown; bodyEncoding?: 'base64' } {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) return { body: bytes.toString('base64'), bodyEncoding: 'base64' };
  if ((contentType ?? '').includes('json')) {
    try {
      return { body: JSON.parse(text) };
    } catch {
      /* keep the text */
    }
  }
  return { body: text };
}

export function upstreamJson(m: UpstreamMessage): Record<string, unknown> {
  return {
    deviceId: m.deviceId,
    moduleId: m.moduleId,
    ...(m.output !== undefined ? { output: m.output } : {}),
    enqueuedTimeUtc: m.enqueuedTimeUtc,
    systemProperties: m.systemProperties,
    properties: m.properties,
    ...upstreamBody(m.body, m.systemProperties['$.ct']),
  };
}
