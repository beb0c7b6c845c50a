/** GetModuleLogs' filters: IoT Edge's time forms, log levels, since-then-tail, and bounded buffers. */
import { describe, it, expect } from 'vitest';
import { ModuleLogBuffer, parseTimeSpec, logLevelOf, selectLines } from '@enclave-edge/edge-sim/agent';

const now = Date.parse('2026-12-02T12:00:00Z');

describe('since / until', () => {
  it('takes UNIX seconds (number or digits), RFC 3339 and durations back from now', () => {
    expect(parseTimeSpec(1_700_000_000, 'since', now)).toBe(1_700_000_000_000);
    expect(parseTimeSpec('1700000000', 'since', now)).toBe(1_700_000_000_000);
    expect(parseTimeSpec('2026-12-01T00:00:00Z', 'since', now)).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(parseTimeSpec('1 d', 'since', now)).toBe(now - 86_400_000);
    expect(parseTimeSpec('90 m', 'since', now)).toBe(now - 5_400_000);
    expect(parseTimeSpec('2 days 3 hours 2 minutes', 'since', now)).toBe(now - (2 * 86400 + 3 * 3600 + 120) * 1000);
    expect(parseTimeSpec('2d', 'since', now)).toBe(now - 2 * 86_400_000);
  });

  it('refuses anything else naming the field (unit names are data: no prototype keys)', () => {
    for (const bad of ['soon', '3 fortnights', '1 constructor', '1 d and more', '2026-13-45T99:00:00Z']) {
      expect(() => parseTimeSpec(bad, 'items[0].filter.since', now)).toThrow(/^items\[0\]\.filter\.since: expected a UNIX timestamp/);
    }
  });
});

describe('lines', () => {
  const buf = new ModuleLogBuffer({ maxLines: 5, maxBytes: 1000 });
  ['<3> err', '<6> info', 'no prefix', '<7> debug', '<4> warn', '<6> newest'].forEach((t, i) => buf.add('m', 'stdout', t, now - (6 - i) * 60_000));

  it('keeps the newest lines within the bounds', () => {
    expect(buf.lines('m').map((l) => l.text)).toEqual(['<6> info', 'no prefix', '<7> debug', '<4> warn', '<6> newest']);
    const big = new ModuleLogBuffer({ maxLines: 100, maxBytes: 10 });
    big.add('m', 'stdout', 'aaaaaa');
    big.add('m', 'stdout', 'bbbbbb');
    expect(big.lines('m').map((l) => l.text)).toEqual(['bbbbbb']);
  });

  it('reads the <N> syslog severity, 6 when absent', () => {
    expect([logLevelOf('<3> x'), logLevelOf('<7>x'), logLevelOf('plain'), logLevelOf('<9> x')]).toEqual([3, 7, 6, 6]);
  });

  it('applies since before tail, and loglevel as "at most"', () => {
    expect(selectLines(buf.lines('m'), { since: '3 m', tail: 2 }, 'f', now).map((l) => l.text)).toEqual(['<4> warn', '<6> newest']);
    expect(selectLines(buf.lines('m'), { since: '150 s', tail: 5 }, 'f', now).map((l) => l.text)).toEqual(['<4> warn', '<6> newest']);
    expect(selectLines(buf.lines('m'), { loglevel: 4 }, 'f', now).map((l) => l.text)).toEqual(['<4> warn']);
    expect(selectLines(buf.lines('m'), { tail: 0 }, 'f', now)).toEqual([]);
  });
});

describe('regex (RE2)', () => {
  it('matches anywhere in the line, in linear time even for a pattern that backtracks catastrophically', () => {
    const buf = new ModuleLogBuffer();
    const long = 'a'.repeat(50_000) + 'b';
    ['alpha', long, 'xaaa', long].forEach((t) => buf.add('m', 'stdout', t, now));
    expect(selectLines(buf.lines('m'), { regex: '(a+)+$' }, 'f', now).map((l) => l.text)).toEqual(['alpha', 'xaaa']);
    expect(selectLines(buf.lines('m'), { regex: 'lph|^x' }, 'f', now).map((l) => l.text)).toEqual(['alpha', 'xaaa']);
  });

  it('refuses what RE2 cannot compile (backreferences, lookaround, bad syntax) naming the field and the problem', () => {
    expect(() => selectLines([], { regex: '(a)\\1' }, 'items[0].filter')).toThrow(/^items\[0\]\.filter\.regex: not a regular expression RE2 accepts \(.*invalid escape sequence/);
    expect(() => selectLines([], { regex: '(?=a)' }, 'items[0].filter')).toThrow(/^items\[0\]\.filter\.regex: not a regular expression RE2 accepts \(.*\(\?=/);
    expect(() => selectLines([], { regex: '(' }, 'items[0].filter')).toThrow(/missing closing \)/);
  });
});
