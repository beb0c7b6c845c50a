/** Three-valued comparison semantics of the IoT Hub / IoT Edge routing query language. */

/** A condition value; `undefined` is the query language's "undefined" (missing property, type mismatch). */
export type Value = string | number | boolean | null | undefined | object;

export type CompareOp = '=' | '<>' | '<' | '>' | '<=' | '>=';

/**
 * Application properties always arrive as strings, so a string that is a plain number compares
 * numerically with a number literal, and 'true'/'false' compares with a boolean literal
 * (`temperature > 30` works on the property "35"). Any other type mismatch is undefined, and
 * an undefined comparison never matches (IoT Hub behaves the same for mismatches).
 */
function unify(a: Value, b: Value): [Value, Value] {
  if (typeof a === typeof b) return [a, b];
  if (typeof a === 'number' && typeof b === 'string') return [a, toNumber(b)];
  if (typeof a === 'string' && typeof b === 'number') return [toNumber(a), b];
  if (typeof a === 'boolean' && typeof b === 'string') return [a, toBool(b)];
  if (typeof a === 'string' && typeof b === 'boolean') return [toBool(a), b];
  return [a, b];
}

function toNumber(s: string): number | undefined {
  if (s.trim() === '') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

function toBool(s: string): boolean | undefined {
  const l = s.toLowerCase();
  return l === 'true' ? true : l === 'false' ? false : undefined;
}

export function compare(op: CompareOp, left: Value, right: Value): boolean | undefined {
  if (left === undefined || right === undefined) return undefined;
  const [a, b] = unify(left, right);
  if (a === undefined || b === undefined) return undefined;
  if (a === null || b === null) {
    if (op === '=') return a === b;
    if (op === '<>') return a !== b;
    return undefined;
  }
  if (typeof a !== typeof b || typeof a === 'object') return undefined;
  switch (op) {
    case '=':
      return a === b;
    case '<>':
      return a !== b;
  }
  if (typeof a === 'boolean') return undefined;
  const x = a as string | number;
  const y = b as string | number;
  switch (op) {
    case '<':
      return x < y;
    case '>':
      return x > y;
    case '<=':
      return x <= y;
    case '>=':
      return x >= y;
  }
}

export function and(a: Value, b: Value): boolean | undefined {
  if (a === false || b === false) return false;
  if (a === true && b === true) return true;
  return undefined;
}

export function or(a: Value, b: Value): boolean | undefined {
  if (a === true || b === true) return true;
  if (a === false && b === false) return false;
  return undefined;
}

export function not(a: Value): boolean | undefined {
  return a === true ? false : a === false ? true : undefined;
}
