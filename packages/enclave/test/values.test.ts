import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { copyValue, isProblem } from '@enclave-edge/enclave';

describe('boundary values (copyValue)', () => {
  it('copies JSON values deeply and turns Buffers into plain Uint8Array', () => {
    const src = { a: [1, { b: 'c' }], buf: Buffer.from([1, 2]) };
    const r = copyValue(src, 1 << 20, 'params');
    if (isProblem(r)) throw new Error(r.message);
    expect(r.value).toEqual({ a: [1, { b: 'c' }], buf: new Uint8Array([1, 2]) });
    expect((r.value as { a: unknown }).a).not.toBe(src.a);
    expect(Object.getPrototypeOf((r.value as { buf: Uint8Array }).buf)).toBe(Uint8Array.prototype);
    expect(r.hasBinary).toBe(true);
  });

  it('keeps a "__proto__" key as data without changing the prototype', () => {
    const src = JSON.parse('{"__proto__": {"polluted": true}}') as object;
    const r = copyValue(src, 1 << 20, 'params');
    if (isProblem(r)) throw new Error(r.message);
    expect(Object.getPrototypeOf(r.value)).toBe(Object.prototype);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(r.value as object)).toEqual(['__proto__']);
  });

  it('refuses accessors, symbol keys and excessive depth', () => {
    const getter = Object.defineProperty({}, 'x', { get: () => 1, enumerable: true });
    expect(copyValue(getter, 1 << 20, 'params')).toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringContaining('accessor') });
    expect(copyValue({ [Symbol('s')]: 1 }, 1 << 20, 'params')).toMatchObject({ code: 'BAD_PARAMETERS' });
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(copyValue(deep, 1 << 20, 'params')).toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringContaining('deeper') });
  });

  it('names the path of the offending value', () => {
    expect(copyValue({ a: [1, 2, Number.NaN] }, 1 << 20, 'params')).toMatchObject({ code: 'BAD_PARAMETERS', message: 'params must be JSON values: params.a[2] is NaN' });
    const getter = { list: [{ ok: 1 }, Object.defineProperty({}, 'secret', { get: () => 1, enumerable: true })] };
    expect(copyValue(getter, 1 << 20, 'result')).toMatchObject({ message: expect.stringContaining('(at result.list[1].secret)') });
    expect(copyValue({ f: [0, () => 1] }, 1 << 20, 'params')).toMatchObject({ message: expect.stringContaining('params.f[1] is a function') });
    expect(copyValue({ big: ['x'.repeat(10), 'y'.repeat(100)] }, 64, 'params')).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', message: 'params exceed the 64-byte limit (at params.big[1])' });
    const cyclic: Record<string, unknown> = { a: { b: {} } };
    (cyclic.a as { b: Record<string, unknown> }).b.c = cyclic;
    expect(copyValue(cyclic, 1 << 20, 'params')).toMatchObject({ message: expect.stringContaining('cycle (at params.a.b.c)') });
  });

  it('round-trips any JSON value and never exceeds the byte budget it reports', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = copyValue(v, 1 << 22, 'params');
        if (isProblem(r)) return false;
        expect(JSON.stringify(r.value)).toBe(JSON.stringify(v));
        return r.bytes >= Buffer.byteLength(JSON.stringify(v)) * 0.5;
      }),
      { numRuns: 200 },
    );
  });
});
