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

/**
 * A fresh object with `src`'s `keys`, each value mapped. Inherited names ("__proto__",
 * "constructor", …) are defined as own data properties: they stay keys and never change the
 * prototype, even where Object.prototype is frozen.
 */
function mapObject<T>(src: Record<string, unknown>, keys: string[], each: (v: unknown) => T): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of keys) {
    const v = each(src[k]);
    if (k in out) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  }
  return out;
}

function mapArray<T>(src: unknown[], each: (v: unknown) => T): T[] {
  const out = new Array<T>(src.length);
  for (let i = 0; i < src.length; i++) out[i] = each(src[i]);
  return out;
}

export function encodeValue(value: Value | undefined, depth = 0): JsonValue {
  if (depth > LIMITS.maxValueDepth) throw new EnclaveEdgeError('BAD_PARAMETERS', `value nested deeper than ${LIMITS.maxValueDepth}`);
  if (value === undefined || value === null) return null;
  if (value instanceof Uint8Array) return { $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  const inner = (v: unknown) => encodeValue(v as Value, depth + 1);
  if (Array.isArray(value)) return mapArray(value, inner);
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'numbers must be finite');
      return value;
    case 'object': {
      const keys = Object.keys(value);
      const out = mapObject(value as Record<string, unknown>, keys, inner);
      return keys.length === 1 && keys[0]!.startsWith('$') ? { $literal: out } : out;
    }
    default:
      throw new EnclaveEdgeError('BAD_PARAMETERS', `a ${typeof value} cannot be sent to a TA`);
  }
}

export function decodeValue(json: unknown, depth = 0): Value {
  if (depth > LIMITS.maxValueDepth) throw new EnclaveEdgeError('BAD_PARAMETERS', `value nested deeper than ${LIMITS.maxValueDepth}`);
  if (json === null || json === undefined) return null;
  const inner = (v: unknown) => decodeValue(v, depth + 1);
  if (Array.isArray(json)) return mapArray(json, inner);
  switch (typeof json) {
    case 'boolean':
    case 'string':
      return json;
    case 'number':
      if (!Number.isFinite(json)) throw new EnclaveEdgeError('BAD_PARAMETERS', 'numbers must be finite');
      return json;
    case 'object': {
      const obj = json as Record<string, unknown>;
      const keys = Object.keys(obj);
      const key = keys.length === 1 ? keys[0] : undefined;
      if (key === '$binary') {
        const b64 = obj.$binary;
        if (typeof b64 !== 'string' || b64.length % 4 !== 0 || !BASE64.test(b64)) {
          throw new EnclaveEdgeError('BAD_PARAMETERS', '$binary must be a base64 string');
        }
        return new Uint8Array(Buffer.from(b64, 'base64'));
      }
      if (key === '$literal' && obj.$literal && typeof obj.$literal === 'object' && !Array.isArray(obj.$literal)) {
        const literal = obj.$literal as Record<string, unknown>;
        return mapObject(literal, Object.keys(literal), inner);
      }
      return mapObject(obj, keys, inner);
    }
    default:
      throw new EnclaveEdgeError('BAD_PARAMETERS', `a ${typeof json} is not a JSON value`);
  }
}
