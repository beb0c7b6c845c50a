/** Replace values of secret-looking fields anywhere in a log record. */
const SECRET_KEY = /(secret|password|passwd|private|token|sas|connection_?string|credential|sharedaccess|apikey|api_key|seal(ed)?key|keymaterial|^key$|pin$)/i;
export const REDACTED = '[redacted]';

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { message: value.message, name: value.name };
  // fromEntries defines own properties: a "__proto__" or "constructor" field stays a field.
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecretKey(k) ? REDACTED : redact(v, depth + 1)]));
}
