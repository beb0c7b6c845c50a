/** zod parsing that fails with an EnclaveEdgeError naming the offending field. */
import { EnclaveEdgeError, type ErrorCode } from '@enclave-edge/errors';
import type { z } from 'zod';
import { LIMITS, utf8Length } from './limits.js';

export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: string, code: ErrorCode = 'BAD_PARAMETERS'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? ` at "${issue.path.map(String).join('.')}"` : '';
  throw new EnclaveEdgeError(code, `invalid ${what}${where}: ${issue?.message ?? 'does not match the schema'}`, {
    detail: issue ? { path: issue.path.map(String) } : undefined,
  });
}

/** Parse JSON text with a size bound first, so huge payloads are refused before parsing. */
export function parseJsonBounded(text: string | Uint8Array, maxBytes: number, what: string): unknown {
  const size = typeof text === 'string' ? utf8Length(text) : text.byteLength;
  if (size > maxBytes) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `${what} is ${size} bytes; the limit is ${maxBytes}`);
  const str = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  try {
    return JSON.parse(str);
  } catch (err) {
    throw new EnclaveEdgeError('BAD_FORMAT', `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Method payloads arrive already parsed by the SDK; bound them by their re-serialised size. */
export function checkPayloadSize(payload: unknown, what: string, maxBytes: number = LIMITS.maxMethodPayloadBytes): void {
  let size: number;
  try {
    size = utf8Length(JSON.stringify(payload) ?? '');
  } catch {
    throw new EnclaveEdgeError('BAD_FORMAT', `${what} cannot be serialised as JSON`);
  }
  if (size > maxBytes) throw new EnclaveEdgeError('PAYLOAD_TOO_LARGE', `${what} is ${size} bytes; the limit is ${maxBytes}`);
}
