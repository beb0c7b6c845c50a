/** Parses a WHERE condition straight into closures (compile once, evaluate fast). */
import { ScanError, type Scanner, type Token } from './scanner.js';
import { appPropertyReader, bodyReader, systemPropertyReader, type EvalContext } from './properties.js';
import { and, compare, not, or, type CompareOp, type Value } from './values.js';

export type Evaluator = (ctx: EvalContext) => Value;

/** Deeper conditions are refused (a parse error, not a stack overflow). */
export const MAX_NESTING = 64;

function nest<T>(sc: Scanner, offset: number, parse: () => T): T {
  if (++sc.depth > MAX_NESTING) throw new ScanError(offset, `condition is nested too deeply (more than ${MAX_NESTING} levels)`);
  try {
    return parse();
  } finally {
    sc.depth--;
  }
}

/** Words that cannot be bare application property names. */
const RESERVED = new Set(['and', 'or', 'not', 'into', 'where', 'from', 'true', 'false', 'null']);

type Fn = { arity: number; apply: (args: Value[]) => Value };
const str = (v: Value): v is string => typeof v === 'string';

/** Built-in functions of the routing query language that this simulator supports. */
const FUNCTIONS: Record<string, Fn> = {
  is_defined: { arity: 1, apply: ([v]) => v !== undefined },
  is_string: { arity: 1, apply: ([v]) => typeof v === 'string' },
  is_number: { arity: 1, apply: ([v]) => typeof v === 'number' },
  is_bool: { arity: 1, apply: ([v]) => typeof v === 'boolean' },
  is_null: { arity: 1, apply: ([v]) => v === null },
  is_object: { arity: 1, apply: ([v]) => v !== null && typeof v === 'object' && !Array.isArray(v) },
  is_array: { arity: 1, apply: ([v]) => Array.isArray(v) },
  lower: { arity: 1, apply: ([v]) => (str(v) ? v.toLowerCase() : undefined) },
  upper: { arity: 1, apply: ([v]) => (str(v) ? v.toUpperCase() : undefined) },
  length: { arity: 1, apply: ([v]) => (str(v) ? v.length : undefined) },
  contains: { arity: 2, apply: ([a, b]) => (str(a) && str(b) ? a.includes(b) : undefined) },
  starts_with: { arity: 2, apply: ([a, b]) => (str(a) && str(b) ? a.startsWith(b) : undefined) },
  ends_with: { arity: 2, apply: ([a, b]) => (str(a) && str(b) ? a.endsWith(b) : undefined) },
};

const OPS: Record<string, CompareOp> = { '=': '=', '<>': '<>', '!=': '<>', '<': '<', '>': '>', '<=': '<=', '>=': '>=' };

const isWord = (t: Token, w: string) => t.kind === 'word' && t.value.toLowerCase() === w;

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of route';
  if (t.kind === 'string') return `'${t.value}'`;
  return `"${t.value}"`;
}

/** Parses `cond` up to (not including) a top-level INTO keyword or the end. */
export function parseCondition(sc: Scanner): Evaluator {
  const first = sc.peek();
  if (first.kind === 'eof' || isWord(first, 'into')) throw new ScanError(first.offset, 'expected a condition after WHERE');
  return parseOr(sc);
}

function parseOr(sc: Scanner): Evaluator {
  let left = parseAnd(sc);
  while (isWord(sc.peek(), 'or')) {
    sc.next();
    const l = left;
    const r = parseAnd(sc);
    left = (c) => or(l(c), r(c));
  }
  return left;
}

function parseAnd(sc: Scanner): Evaluator {
  let left = parseNot(sc);
  while (isWord(sc.peek(), 'and')) {
    sc.next();
    const l = left;
    const r = parseNot(sc);
    // Short-circuit: false AND x is false whatever x is.
    left = (c) => {
      const a = l(c);
      return a === false ? false : and(a, r(c));
    };
  }
  return left;
}

function parseNot(sc: Scanner): Evaluator {
  const t = sc.peek();
  if (isWord(t, 'not')) {
    sc.next();
    const inner = nest(sc, t.offset, () => parseNot(sc));
    return (c) => not(inner(c));
  }
  return parseComparison(sc);
}

function parseComparison(sc: Scanner): Evaluator {
  const left = parsePrimary(sc);
  const t = sc.peek();
  if (t.kind !== 'op') return left;
  sc.next();
  const op = OPS[t.value]!;
  const right = parsePrimary(sc);
  return (c) => compare(op, left(c), right(c));
}

function parsePrimary(sc: Scanner): Evaluator {
  const t = sc.next();
  switch (t.kind) {
    case 'lparen': {
      const inner = nest(sc, t.offset, () => parseOr(sc));
      const close = sc.next();
      if (close.kind !== 'rparen') throw new ScanError(close.offset, `expected ")", found ${describe(close)}`);
      return inner;
    }
    case 'string': {
      const v = t.value;
      return () => v;
    }
    case 'number': {
      const v = Number(t.value);
      return () => v;
    }
    case 'bracketed':
      return appPropertyReader(t.value);
    case 'sysref':
      return sysRef(t);
    case 'word':
      return wordRef(sc, t);
    default:
      throw new ScanError(t.offset, `expected a value, property or function, found ${describe(t)}`);
  }
}

function sysRef(t: Token): Evaluator {
  const name = t.value.slice(1);
  const [head, ...path] = name.split('.');
  if (head!.toLowerCase() === 'body') {
    if (path.some((p) => p === '')) throw new ScanError(t.offset, `malformed body path "${t.value}"`);
    return bodyReader(path);
  }
  if (path.length > 0) throw new ScanError(t.offset, `only $body takes a path, found "${t.value}"`);
  const reader = systemPropertyReader(head!);
  if (!reader) throw new ScanError(t.offset, `unknown system property "${t.value}"`);
  return reader;
}

function wordRef(sc: Scanner, t: Token): Evaluator {
  const lower = t.value.toLowerCase();
  if (lower === 'true') return () => true;
  if (lower === 'false') return () => false;
  if (lower === 'null') return () => null;
  if (sc.peek().kind === 'lparen') return call(sc, t);
  if (RESERVED.has(lower)) throw new ScanError(t.offset, `expected a value, property or function, found ${describe(t)}`);
  return appPropertyReader(t.value);
}

function call(sc: Scanner, name: Token): Evaluator {
  const fn = FUNCTIONS[name.value.toLowerCase()];
  if (!fn) throw new ScanError(name.offset, `unknown function "${name.value}"`);
  sc.next(); // (
  const args: Evaluator[] = [];
  if (sc.peek().kind !== 'rparen') {
    for (;;) {
      args.push(nest(sc, name.offset, () => parseOr(sc)));
      const sep = sc.peek();
      if (sep.kind !== 'comma') break;
      sc.next();
    }
  }
  const close = sc.next();
  if (close.kind !== 'rparen') throw new ScanError(close.offset, `expected "," or ")" in ${name.value.toUpperCase()}(…), found ${describe(close)}`);
  if (args.length !== fn.arity) {
    throw new ScanError(name.offset, `${name.value.toUpperCase()} takes ${fn.arity} argument${fn.arity === 1 ? '' : 's'}, got ${args.length}`);
  }
  if (args.length === 1) {
    const a = args[0]!;
    return (c) => fn.apply([a(c)]);
  }
  return (c) => fn.apply(args.map((a) => a(c)));
}
