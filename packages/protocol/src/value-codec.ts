/**
 * JSON codec for the TA SDK `Value`: binary data travels as `{"$binary":"<base64>"}`.
 * A plain object whose only key starts with `$` is wrapped in `{"$literal": …}` so that
 * user data can never be mistaken for an encoded binary.
 */
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { Value } from '@enclave-edge/ta-sdk';
import { LIMITS } from './limits.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function soleKey(obj: object): string | undefined {
  const keys = Object.keys(obj);
  return keys.length === 1 ? keys[0] : undefined;
}

export function encodeValue(value: Value | undefined, depth = 0): JsonValue {
  if (depth > LIMITS.maxValueDepth) throw new EnclaveEdgeError('BAD_PARAMETERS', `value nested deeper than ${LIMITS.maxValueDepth}`);
  if (value === undefined || value === null) return null;
  if (value instanceof Uint8Array) return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (Array.isArray(value)) return value.map((v) => encodeValue(v, depth + 1));
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'numbers must be finite');
      return value;
    case 'object': {
      // fromEntries defines own data properties: "__proto__" and "constructor" stay keys.
      const out: Record<string, JsonValue> = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeValue(v, depth + 1)]));
      const key = soleKey(out);
      return key !== undefined && key.startsWith('$') ? { $literal: out } : out;
    }
    default:
      throw new EnclaveEdgeError('BAD_PARAMETERS', `a ${typeof value} cannot be sent to a TA`);
  }
}

export function decodeValue(json: unknown, depth = 0): Value {
  if (depth > LIMITS.maxValueDepth) throw new EnclaveEdgeError('BAD_PARAMETERS', `value nested deeper than ${LIMITS.maxValueDepth}`);
  if (json === null || json === undefined) return null;
  if (Array.isArray(json)) return json.map((v) => decodeValue(v, depth + 1));
  switch (typeof json) {
    case 'boolean':
    case 'string':
      return json;
    case 'number':
      if (!Number.isFinite(json)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'numbers must be finite');
      return json;
    case 'object': {
      const obj = json as Record<string, unknown>;
      const key = soleKey(obj);
      if (key === '$binary') {
        const b64 = obj.$binary;
        if (typeof b64 !== 'string' || b64.length % 4 !== 0 || !BASE64.test(b64)) {
          throw new EnclaveEdgeError('BAD_PARAMETERS', '$binary must be a base64 string');
        }
        return new Uint8Array(Buffer.from(b64, 'base64'));
      }
      const source = key === '$literal' && obj.$literal && typeof obj.$literal === 'object' && !Array.isArray(obj.$literal)
        ? (obj.$literal as Record<string, unknown>)
        : obj;
      return Object.fromEntries(Object.entries(source).map(([k, v]) => [k, decodeValue(v, depth + 1)])) as Record<string, Value>;
    }
    default:
      throw new EnclaveEdgeError('BAD_PARAMETERS', `a ${typeof json} is not a JSON value`);
  }
}
