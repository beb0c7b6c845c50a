/** Parses one route text `FROM <source> [WHERE <condition>] INTO <sink>` into its parts. */
import { parseCondition, type Evaluator } from './condition.js';
import { ScanError, Scanner, type Token } from './scanner.js';
import type { RouteSink, RouteSource } from './types.js';

export interface ParsedRoute {
  source: RouteSource;
  condition?: { text: string; evaluate: Evaluator };
  sink: RouteSink;
}

const isWord = (t: Token, w: string) => t.kind === 'word' && t.value.toLowerCase() === w;
const describe = (t: Token) => (t.kind === 'eof' ? 'end of route' : `"${t.value}"`);
const NAME = /^[^/\s"'()]+$/;

export const SOURCE_FORMS = [
  '/*',
  '/messages/*',
  '/messages/modules/*',
  '/messages/modules/{module}/*',
  '/messages/modules/{module}/outputs/*',
  '/messages/modules/{module}/outputs/{output}',
  '/twinChangeNotifications',
];

/** Throws ScanError (offset + reason); the caller turns it into a RouteSyntaxError. */
export function parseRoute(text: string): ParsedRoute {
  const sc = new Scanner(text);
  const from = sc.next();
  if (!isWord(from, 'from')) throw new ScanError(from.offset, `expected FROM, found ${describe(from)}`);

  const src = sc.readRun();
  if (src.value === '') throw new ScanError(src.offset, 'expected a source such as /messages/* after FROM');
  const source = parseSource(src);

  let condition: ParsedRoute['condition'];
  const kw = sc.next();
  let into = kw;
  if (isWord(kw, 'where')) {
    const start = sc.pos;
    const evaluate = parseCondition(sc);
    const end = sc.pos;
    condition = { text: text.slice(start, end).trim(), evaluate };
    into = sc.next();
    if (!isWord(into, 'into')) throw new ScanError(into.offset, `expected INTO or an operator (AND, OR, =, <>, <, >, …), found ${describe(into)}`);
  } else if (!isWord(kw, 'into')) {
    throw new ScanError(kw.offset, `expected WHERE or INTO, found ${describe(kw)}`);
  }

  const sink = parseSink(sc);
  const rest = sc.next();
  if (rest.kind !== 'eof') throw new ScanError(rest.offset, `unexpected ${describe(rest)} after the sink`);
  return condition ? { source, condition, sink } : { source, sink };
}

function parseSource(t: Token): RouteSource {
  const text = t.value;
  const bad = (reason: string): never => {
    throw new ScanError(t.offset, `${reason}; expected one of ${SOURCE_FORMS.join(', ')}`);
  };
  if (!text.startsWith('/')) bad(`source "${text}" must start with "/"`);
  const seg = text.slice(1).split('/');
  const lc = (i: number) => seg[i]?.toLowerCase();
  const name = (i: number): string => {
    const s = seg[i] ?? '';
    if (!NAME.test(s) || s === '*') bad(`bad name "${s}" in source "${text}"`);
    return s;
  };
  if (seg.length === 1 && seg[0] === '*') return { kind: 'all', text };
  if (seg.length === 1 && lc(0) === 'twinchangenotifications') return { kind: 'twinChangeNotifications', text };
  if (lc(0) !== 'messages') return bad(`unknown source "${text}"`);
  if (seg.length === 2 && seg[1] === '*') return { kind: 'messages', text };
  if (lc(1) !== 'modules') return bad(`unknown source "${text}"`);
  if (seg.length === 3 && seg[2] === '*') return { kind: 'modules', text };
  if (seg.length === 4 && seg[3] === '*') return { kind: 'module', text, module: name(2) };
  if (seg.length >= 4 && lc(3) === 'outputs') {
    if (seg.length === 5 && seg[4] === '*') return { kind: 'moduleOutputs', text, module: name(2) };
    if (seg.length === 5) return { kind: 'moduleOutput', text, module: name(2), output: name(4) };
  }
  return bad(`unknown source "${text}"`);
}

function parseSink(sc: Scanner): RouteSink {
  const t = sc.next();
  if (t.kind === 'sysref' && t.value.toLowerCase() === '$upstream') return { kind: 'upstream', key: '$upstream' };
  if (isWord(t, 'brokeredendpoint')) {
    sc.skipSpace();
    if (sc.text[sc.pos] !== '(') {
      throw new ScanError(sc.pos, `expected "(" after BrokeredEndpoint, found ${sc.pos >= sc.text.length ? 'end of route' : `"${sc.readRun().value}"`}`);
    }
    sc.next();
    const path = sc.next();
    if (path.kind !== 'string') throw new ScanError(path.offset, `expected a quoted endpoint such as "/modules/{module}/inputs/{input}", found ${describe(path)}`);
    const m = /^\/modules\/([^/]+)\/inputs\/([^/]+)$/.exec(path.value);
    if (!m || !NAME.test(m[1]!) || !NAME.test(m[2]!)) {
      throw new ScanError(path.offset, `endpoint "${path.value}" must look like "/modules/{module}/inputs/{input}"`);
    }
    const close = sc.next();
    if (close.kind !== 'rparen') throw new ScanError(close.offset, `expected ")" after the endpoint, found ${describe(close)}`);
    return { kind: 'module', key: `/modules/${m[1]}/inputs/${m[2]}`, module: m[1]!, input: m[2]! };
  }
  throw new ScanError(t.offset, `expected a sink ($upstream or BrokeredEndpoint("/modules/{module}/inputs/{input}")), found ${describe(t)}`);
}
