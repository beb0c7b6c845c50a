/**
 * The part of IoT Hub's query language that twin queries and configuration target conditions use:
 * `SELECT [TOP n] * | COUNT() [AS name] | path [AS name], … FROM devices | devices.modules
 * [WHERE <condition>]`, conditions over dotted twin paths
 * (`tags.env`, `properties.reported.fw`, `deviceId`, `moduleId`) with = <> != < > <= >=, AND, OR,
 * NOT, parentheses, IS_DEFINED(path), and string, number, boolean and null literals. One parser
 * for both, so a targetCondition means what a query with it as WHERE means.
 */
import { and, compare, not, or, type CompareOp, type Value } from '../routes/values.js';

export class QueryError extends Error {}

type Tok = { k: 'id' | 'str' | 'num' | 'op' | '(' | ')' | ',' | '*' | 'eof'; v: string; at: number };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (c === "'" || c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw new QueryError(`unterminated string at ${at}`);
        if (src[i] === c) {
          if (src[i + 1] === c) {
            v += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += src[i++];
      }
      out.push({ k: 'str', v, at });
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(src.slice(i))!;
      out.push({ k: 'num', v: m[0], at });
      i += m[0].length;
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0], at });
      i += m[0].length;
    } else if ('<>=!'.includes(c)) {
      const m = /^(<>|!=|<=|>=|=|<|>)/.exec(src.slice(i));
      if (!m) throw new QueryError(`unexpected "${c}" at ${at}`);
      out.push({ k: 'op', v: m[0], at });
      i += m[0].length;
    } else if ('(),*'.includes(c)) {
      out.push({ k: c as '(' | ')' | ',' | '*', v: c, at });
      i++;
    } else throw new QueryError(`unexpected "${c}" at ${at}`);
  }
  out.push({ k: 'eof', v: '', at: src.length });
  return out;
}

export type TwinDoc = Record<string, unknown>;
export type Condition = (twin: TwinDoc) => Value;

/** A dotted path into a twin document; keys are data (own properties only). */
function reader(path: string): Condition {
  const parts = path.split('.');
  return (twin) => {
    let v: unknown = twin;
    for (const p of parts) {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, p)) return undefined;
      v = (v as Record<string, unknown>)[p];
    }
    return v as Value;
  };
}

class Parser {
  private i = 0;
  constructor(private readonly t: Tok[]) {}
  peek(): Tok {
    return this.t[this.i]!;
  }
  next(): Tok {
    return this.t[this.i++]!;
  }
  word(w: string): boolean {
    const t = this.peek();
    return t.k === 'id' && t.v.toLowerCase() === w;
  }
  expectWord(w: string): void {
    if (!this.word(w)) throw new QueryError(`expected ${w.toUpperCase()} at ${this.peek().at}`);
    this.next();
  }
  or(depth = 0): Condition {
    if (depth > 32) throw new QueryError('condition nested too deeply');
    let l = this.and(depth);
    while (this.word('or')) {
      this.next();
      const a = l;
      const b = this.and(depth);
      l = (d) => or(a(d), b(d));
    }
    return l;
  }
  and(depth: number): Condition {
    let l = this.not(depth);
    while (this.word('and')) {
      this.next();
      const a = l;
      const b = this.not(depth);
      l = (d) => and(a(d), b(d));
    }
    return l;
  }
  not(depth: number): Condition {
    if (this.word('not')) {
      this.next();
      const inner = this.not(depth + 1);
      return (d) => not(inner(d));
    }
    return this.cmp(depth);
  }
  cmp(depth: number): Condition {
    const l = this.primary(depth);
    const t = this.peek();
    if (t.k !== 'op') return l;
    this.next();
    const op = (t.v === '!=' ? '<>' : t.v) as CompareOp;
    const r = this.primary(depth);
    return (d) => compare(op, l(d), r(d));
  }
  primary(depth: number): Condition {
    const t = this.next();
    if (t.k === '(') {
      const inner = this.or(depth + 1);
      if (this.next().k !== ')') throw new QueryError(`expected ")" after position ${t.at}`);
      return inner;
    }
    if (t.k === 'str') return () => t.v;
    if (t.k === 'num') {
      const n = Number(t.v);
      return () => n;
    }
    if (t.k === 'id') {
      const lower = t.v.toLowerCase();
      if (lower === 'true') return () => true;
      if (lower === 'false') return () => false;
      if (lower === 'null') return () => null;
      if (lower === 'is_defined' && this.peek().k === '(') {
        this.next();
        const arg = this.next();
        if (arg.k !== 'id' || this.next().k !== ')') throw new QueryError(`IS_DEFINED takes one property path (at ${t.at})`);
        const r = reader(arg.v);
        return (d) => r(d) !== undefined;
      }
      return reader(t.v);
    }
    throw new QueryError(`expected a property path or a value at ${t.at}, found ${t.k === 'eof' ? 'the end' : JSON.stringify(t.v)}`);
  }
}

/** A targetCondition (or a WHERE clause) as a predicate over a twin document. */
export function compileCondition(src: string): (twin: TwinDoc) => boolean {
  const p = new Parser(tokenize(src));
  const c = p.or();
  if (p.peek().k !== 'eof') throw new QueryError(`unexpected ${JSON.stringify(p.peek().v)} at ${p.peek().at}`);
  return (twin) => c(twin) === true;
}

/** What a row of the answer is: the whole twin, chosen fields (each under its name), or a count. */
export type Selection =
  | { kind: 'all' }
  | { kind: 'fields'; fields: { read: Condition; name: string }[] }
  | { kind: 'count'; name: string };

export interface TwinQuery {
  from: 'devices' | 'devices.modules';
  where: (twin: TwinDoc) => boolean;
  select: Selection;
  /** TOP n: at most n rows. */
  top?: number;
}

/** Words that start a clause the simulator does not take, and what to say about them. */
const UNSUPPORTED = new Map<string, string>([
  ['group', 'GROUP BY is not supported'],
  ['order', 'ORDER BY is not supported'],
  ['join', 'JOIN is not supported'],
]);

/** An aggregate without AS is named $1 (as IoT Hub answers); a path without AS takes its last segment. */
const UNNAMED_AGGREGATE = '$1';

function selectList(p: Parser): Selection {
  if (p.peek().k === '*') {
    p.next();
    if (p.peek().k === ',') throw new QueryError(`SELECT * cannot be combined with other fields (at ${p.peek().at})`);
    return { kind: 'all' };
  }
  const items: ({ agg: true; name: string } | { agg: false; read: Condition; name: string })[] = [];
  for (;;) {
    const t = p.next();
    if (t.k !== 'id') throw new QueryError(`expected *, COUNT() or a property path at ${t.at}, found ${t.k === 'eof' ? 'the end' : JSON.stringify(t.v)}`);
    const lower = t.v.toLowerCase();
    let item: (typeof items)[number];
    if (p.peek().k === '(') {
      if (lower !== 'count') throw new QueryError(`${t.v.toUpperCase()}() is not supported (COUNT() is)`);
      p.next();
      if (p.next().k !== ')') throw new QueryError(`COUNT takes no argument: COUNT() (at ${t.at})`);
      item = { agg: true, name: UNNAMED_AGGREGATE };
    } else {
      if (lower === 'from') throw new QueryError(`expected a property path before FROM (at ${t.at})`);
      item = { agg: false, read: reader(t.v), name: t.v.slice(t.v.lastIndexOf('.') + 1) };
    }
    if (p.word('as')) {
      p.next();
      const alias = p.next();
      if (alias.k !== 'id' || alias.v.includes('.')) throw new QueryError(`AS takes a name without dots (at ${alias.at})`);
      item.name = alias.v;
    }
    items.push(item);
    if (p.peek().k !== ',') break;
    p.next();
  }
  const aggs = items.filter((i) => i.agg);
  if (aggs.length) {
    if (items.length > 1) throw new QueryError('COUNT() with other fields needs GROUP BY, which is not supported; select COUNT() alone');
    return { kind: 'count', name: aggs[0]!.name };
  }
  const names = new Set<string>();
  for (const i of items) {
    if (names.has(i.name)) throw new QueryError(`two fields are named ${JSON.stringify(i.name)}; name one with AS`);
    names.add(i.name);
  }
  return { kind: 'fields', fields: items.map((i) => ({ read: (i as { read: Condition }).read, name: i.name })) };
}

/**
 * `SELECT [TOP n] * | COUNT() [AS a] | path [AS a], … FROM devices | devices.modules [WHERE …]`.
 * Anything else is a QueryError naming what is not supported, never a different answer.
 */
export function parseQuery(src: string): TwinQuery {
  const p = new Parser(tokenize(src));
  p.expectWord('select');
  let top: number | undefined;
  if (p.word('top')) {
    p.next();
    const n = p.next();
    if (n.k !== 'num' || !/^\d+$/.test(n.v) || Number(n.v) < 1) throw new QueryError(`TOP takes a whole number of at least 1 (at ${n.at})`);
    top = Number(n.v);
  }
  const select = selectList(p);
  p.expectWord('from');
  const from = p.next();
  if (from.k !== 'id' || !['devices', 'devices.modules'].includes(from.v.toLowerCase())) throw new QueryError(`FROM devices or devices.modules (found ${JSON.stringify(from.v)}; devices.jobs and other collections are not supported)`);
  let where: (twin: TwinDoc) => boolean = () => true;
  if (p.word('where')) {
    p.next();
    const c = p.or();
    where = (twin) => c(twin) === true;
  }
  const rest = p.peek();
  if (rest.k !== 'eof') {
    const why = rest.k === 'id' ? UNSUPPORTED.get(rest.v.toLowerCase()) : undefined;
    throw new QueryError(`unexpected ${JSON.stringify(rest.v)} at ${rest.at}${why ? ` (${why})` : ''}`);
  }
  return { from: from.v.toLowerCase() as TwinQuery['from'], where, select, ...(top !== undefined ? { top } : {}) };
}

/** The rows of the answer over `docs` (the twins of the FROM collection), in their order. */
export function runQuery(q: TwinQuery, docs: readonly TwinDoc[]): TwinDoc[] {
  const matching = docs.filter((d) => q.where(d));
  const { select } = q;
  let rows: TwinDoc[];
  if (select.kind === 'count') {
    const row: TwinDoc = Object.create(null);
    row[select.name] = matching.length;
    rows = [row];
  } else if (select.kind === 'fields') {
    rows = matching.map((d) => {
      // Names come from the query: a null-prototype row, and a field absent from a twin is left out.
      const row: TwinDoc = Object.create(null);
      for (const f of select.fields) {
        const v = f.read(d);
        if (v !== undefined) row[f.name] = v;
      }
      return row;
    });
  } else rows = matching;
  return q.top !== undefined ? rows.slice(0, q.top) : rows;
}
