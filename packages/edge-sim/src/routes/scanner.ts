/** Character-level tokenizer over one route's text; every token keeps its offset for error carets. */

export type TokenKind = 'word' | 'sysref' | 'bracketed' | 'string' | 'number' | 'op' | 'lparen' | 'rparen' | 'comma' | 'eof';

export interface Token {
  kind: TokenKind;
  /** Source text of the token (for strings and bracketed names: the unquoted value). */
  value: string;
  offset: number;
}

export class ScanError extends Error {
  constructor(readonly offset: number, reason: string) {
    super(reason);
  }
}

const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_]/;
const SYSREF_CHAR = /[A-Za-z0-9_.]/;
const TWO_CHAR_OPS = new Set(['<>', '!=', '<=', '>=']);
const ONE_CHAR_OPS = new Set(['=', '<', '>']);

export class Scanner {
  pos = 0;
  /** Nesting depth of the condition parser (parentheses, NOT, function calls). */
  depth = 0;
  constructor(readonly text: string) {}

  skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  atEnd(): boolean {
    this.skipSpace();
    return this.pos >= this.text.length;
  }

  /** Reads a run of non-space characters (route source paths); returns the run and its offset. */
  readRun(): Token {
    this.skipSpace();
    const start = this.pos;
    while (this.pos < this.text.length && !/\s/.test(this.text[this.pos]!)) this.pos++;
    return { kind: 'word', value: this.text.slice(start, this.pos), offset: start };
  }

  peek(): Token {
    const save = this.pos;
    const t = this.next();
    this.pos = save;
    return t;
  }

  next(): Token {
    this.skipSpace();
    const s = this.text;
    const start = this.pos;
    if (start >= s.length) return { kind: 'eof', value: '', offset: start };
    const c = s[start]!;
    if (c === '(') return this.take('lparen', 1);
    if (c === ')') return this.take('rparen', 1);
    if (c === ',') return this.take('comma', 1);
    const two = s.slice(start, start + 2);
    if (TWO_CHAR_OPS.has(two)) return this.take('op', 2);
    if (ONE_CHAR_OPS.has(c)) return this.take('op', 1);
    if (c === "'" || c === '"') return this.readQuoted(c, 'string');
    if (c === '[') return this.readBracketed();
    if (c === '$') {
      let p = start + 1;
      while (p < s.length && SYSREF_CHAR.test(s[p]!)) p++;
      if (p === start + 1) throw new ScanError(start, 'expected a name after "$"');
      this.pos = p;
      return { kind: 'sysref', value: s.slice(start, p), offset: start };
    }
    if (/[0-9]/.test(c) || ((c === '-' || c === '.') && /[0-9.]/.test(s[start + 1] ?? ''))) {
      const m = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(s.slice(start));
      if (!m) throw new ScanError(start, `malformed number`);
      this.pos = start + m[0].length;
      if (this.pos < s.length && WORD_CHAR.test(s[this.pos]!)) throw new ScanError(this.pos, `malformed number "${s.slice(start, this.pos + 1)}"`);
      return { kind: 'number', value: m[0], offset: start };
    }
    if (WORD_START.test(c)) {
      let p = start + 1;
      while (p < s.length && WORD_CHAR.test(s[p]!)) p++;
      this.pos = p;
      return { kind: 'word', value: s.slice(start, p), offset: start };
    }
    throw new ScanError(start, `unexpected character "${c}"`);
  }

  private take(kind: TokenKind, n: number): Token {
    const t = { kind, value: this.text.slice(this.pos, this.pos + n), offset: this.pos };
    this.pos += n;
    return t;
  }

  /** Quoted string; a doubled quote inside is an escaped quote (SQL style), `\'` too. */
  private readQuoted(q: string, kind: TokenKind): Token {
    const s = this.text;
    const start = this.pos;
    let out = '';
    let p = start + 1;
    for (;;) {
      if (p >= s.length) throw new ScanError(start, `unterminated string starting here`);
      const ch = s[p]!;
      if (ch === '\\' && (s[p + 1] === q || s[p + 1] === '\\')) {
        out += s[p + 1];
        p += 2;
      } else if (ch === q) {
        if (s[p + 1] === q) {
          out += q;
          p += 2;
        } else {
          p++;
          break;
        }
      } else {
        out += ch;
        p++;
      }
    }
    this.pos = p;
    return { kind, value: out, offset: start };
  }

  /** `[property name]`: an application property whose name is not a bare word. */
  private readBracketed(): Token {
    const s = this.text;
    const start = this.pos;
    const end = s.indexOf(']', start + 1);
    if (end < 0) throw new ScanError(start, 'unterminated "[" property name');
    if (end === start + 1) throw new ScanError(start, 'empty "[]" property name');
    this.pos = end + 1;
    return { kind: 'bracketed', value: s.slice(start + 1, end), offset: start };
  }
}
