/**
 * The boundary check for everything that crosses into or out of an enclave: JSON values and
 * Uint8Array only. It returns a fresh deep copy, so a caller mutating its object after the
 * call was accepted (time-of-check/time-of-use) cannot change what the TA sees.
 */
import type { Value } from '@enclave-edge/ta-sdk';

export const MAX_VALUE_DEPTH = 64;

export interface ValueProblem {
  code: 'BAD_PARAMETERS' | 'PAYLOAD_TOO_LARGE';
  message: string;
}

export interface CopiedValue {
  value: Value;
  /** Approximate encoded size in bytes (UTF-8 strings, raw binary, JSON punctuation). */
  bytes: number;
  hasBinary: boolean;
}

class Problem {
  constructor(readonly problem: ValueProblem) {}
}

function describe(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return 'a bigint';
  if (typeof v === 'undefined') return 'undefined';
  if (typeof v === 'number') return String(v);
  if (v && typeof v === 'object') {
    const name = Object.getPrototypeOf(v)?.constructor?.name;
    return typeof name === 'string' ? `a ${name}` : 'an exotic object';
  }
  return typeof v;
}

/**
 * Validate and copy `input` as a Value. `label` names it in errors ("params", "result").
 * Returns either the copy or the first problem found.
 */
export function copyValue(input: unknown, maxBytes: number, label: string, copy = true): CopiedValue | ValueProblem {
  let bytes = 0;
  let hasBinary = false;
  // the objects on the current path (cycle check); an array beats a Set at these depths
  const onPath: object[] = [];
  // the keys and indexes down to the current value; the path text is built only for an error
  const segments: Array<string | number> = [];
  const where = (): string => label + segments.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
  const add = (n: number) => {
    bytes += n;
    if (bytes > maxBytes) throw new Problem({ code: 'PAYLOAD_TOO_LARGE', message: `${label} exceed the ${maxBytes}-byte limit (at ${where()})` });
  };
  const child = (v: unknown, key: string | number, depth: number): Value => {
    segments.push(key);
    const out = walk(v, depth);
    segments.pop();
    return out;
  };
  const walk = (v: unknown, depth: number): Value => {
    if (v === null) return add(4), null;
    switch (typeof v) {
      case 'string':
        add(v.length * 3 > 64 ? Buffer.byteLength(v) + 2 : v.length * 3 + 2);
        return v;
      case 'boolean':
        add(5);
        return v;
      case 'number':
        if (!Number.isFinite(v)) throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} must be JSON values: ${where()} is ${describe(v)}` });
        add(Number.isInteger(v) && v >= 0 && v < 1e6 ? (v < 10 ? 1 : 6) : String(v).length);
        return v;
      case 'object':
        break;
      default:
        throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} must be JSON values or Uint8Array: ${where()} is ${describe(v)}` });
    }
    const o = v as object;
    if (depth >= MAX_VALUE_DEPTH) throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} nest deeper than ${MAX_VALUE_DEPTH} levels (at ${where()})` });
    if (onPath.includes(o)) throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} contain a cycle (at ${where()})` });
    if (o instanceof Uint8Array) {
      add(o.byteLength);
      hasBinary = true;
      return copy ? new Uint8Array(o) : o; // a plain Uint8Array copy, even of a Buffer
    }
    onPath.push(o);
    try {
      if (Array.isArray(o)) {
        add(2);
        if (!copy) {
          for (let i = 0; i < o.length; i++) child(o[i], i, depth + 1);
          return o as Value[];
        }
        const out: Value[] = new Array(o.length);
        for (let i = 0; i < o.length; i++) out[i] = child(o[i], i, depth + 1);
        return out;
      }
      const proto = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null) {
        throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} must be plain objects, arrays, JSON scalars or Uint8Array: ${where()} is ${describe(o)}` });
      }
      if (Object.getOwnPropertySymbols(o).length) throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} must not have symbol keys (at ${where()})` });
      add(2);
      const out: { [k: string]: Value } = {};
      for (const key of Object.keys(o)) {
        const d = Object.getOwnPropertyDescriptor(o, key)!;
        if (!('value' in d)) {
          segments.push(key);
          throw new Problem({ code: 'BAD_PARAMETERS', message: `${label} must not have accessors (at ${where()})` });
        }
        add(key.length + 3);
        if (!copy) {
          child(d.value, key, depth + 1);
          continue;
        }
        const v = child(d.value, key, depth + 1);
        // defineProperty for inherited names ("__proto__", "constructor", …): it stays data, never
        // changes the copy's prototype, and works where Object.prototype is frozen (the TA's realm).
        if (key in out) Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
        else out[key] = v;
      }
      return copy ? out : (o as Value);
    } finally {
      onPath.pop();
    }
  };
  try {
    const value = walk(input, 0);
    return { value, bytes, hasBinary };
  } catch (err) {
    if (err instanceof Problem) return err.problem;
    if (err instanceof RangeError) return { code: 'BAD_PARAMETERS', message: `${label} are too deeply nested` };
    throw err;
  }
}

export function isProblem(r: CopiedValue | ValueProblem): r is ValueProblem {
  return 'code' in r;
}
