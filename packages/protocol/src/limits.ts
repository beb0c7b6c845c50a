/** Size limits on the wire. edgeHub messages are capped at 256 KiB; IoT Hub direct-method payloads at 128 KiB. */
export const LIMITS = {
  /** Largest taRequest/taResponse message body (UTF-8 bytes). */
  maxMessageBytes: 256 * 1024,
  /** Largest direct-method request or response payload (UTF-8 bytes of its JSON). */
  maxMethodPayloadBytes: 128 * 1024,
  /** Largest inline bundle in a desired property or loadTA call (decoded bytes). */
  maxInlineBundleBytes: 96 * 1024,
  /** Deepest nesting accepted in a params/result value. */
  maxValueDepth: 64,
  /** Most invocations one `invokeBatch` taRequest may carry (pipelines send up to 32). */
  maxBatchItems: 64,
  /** Longest call deadline a caller may ask for. */
  maxTimeoutMs: 120_000,
  defaultTimeoutMs: 10_000,
} as const;

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}
