/**
 * taRequest / taResponse have one validator, the zod schemas, which check the envelope; the
 * values inside (params, result, claims) are checked once, by decodeValue where they are used.
 * Property-based over near-valid and hostile shapes, parsed from JSON text.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { decodeValue, parseTARequest, parseTAResponse, taRequestSchema } from '@enclave-edge/protocol';

const nameLike = fc.oneof(fc.constantFrom('hello', 'sensor-signer', 'a', 'Hello', '-x', '', 'x'.repeat(64), 'x'.repeat(65), 'ping', 'sign', '_c', '1abc', 'a.b', 'a b'), fc.string({ maxLength: 70 }));
const idLike = fc.oneof(fc.uuid(), fc.constantFrom('', 'a', 'x'.repeat(128), 'x'.repeat(129), 'a/b', 'id:1.2_3-4'), fc.string({ maxLength: 130 }));
const numLike = fc.oneof(fc.integer({ min: -5, max: 2 ** 53 + 10 }), fc.double(), fc.constantFrom(1, 0, -1, 1.5, 2 ** 53, 2 ** 60, Date.now() + 1000));
const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constantFrom(deep(63), deep(64), deep(65), deep(200), { __proto__: 1 }, JSON.parse('{"__proto__":{"x":1}}'), { $binary: 'AQID' }, []));
const anyField = fc.oneof(nameLike, idLike, numLike, jsonish, fc.constant(null), fc.boolean());

const requestItem = fc.oneof(
  fc.record({ params: jsonish, extra: anyField, ok: fc.boolean() }, { requiredKeys: [] }),
  fc.record({ params: jsonish }, { requiredKeys: [] }),
  anyField,
);
const batchItems = fc.oneof(
  fc.array(requestItem, { maxLength: 4 }),
  fc.array(fc.record({ params: fc.jsonValue({ maxDepth: 2 }) }), { minLength: 60, maxLength: 70 }),
  fc.constantFrom([], [{}], [{}, null], Array.from({ length: 64 }, () => ({})), Array.from({ length: 65 }, () => ({}))),
);
const errorLike = fc.oneof(
  fc.record({ code: fc.oneof(fc.constantFrom('TIMEOUT', 'BUSY', 'NOPE'), anyField), message: fc.oneof(fc.string(), anyField), detail: anyField, extra: anyField }, { requiredKeys: [] }),
  anyField,
);
const resultItem = fc.oneof(
  fc.record({ ok: fc.oneof(fc.constant(true), fc.constant(false), anyField), result: jsonish, error: errorLike, extra: anyField }, { requiredKeys: [] }),
  fc.record({ ok: fc.constant(true), result: jsonish }, { requiredKeys: ['ok'] }),
  anyField,
);
const resultItems = fc.oneof(
  fc.array(resultItem, { maxLength: 4 }),
  fc.array(fc.record({ ok: fc.constant(true), result: fc.jsonValue({ maxDepth: 2 }) }), { minLength: 60, maxLength: 70 }),
  fc.constantFrom([], [{ ok: true }], Array.from({ length: 65 }, () => ({ ok: true }))),
);

const request = fc.record(
  {
    v: fc.oneof(fc.constant(1), anyField),
    id: fc.oneof(idLike, anyField),
    deadline: fc.oneof(numLike, anyField),
    op: fc.oneof(fc.constantFrom('invoke', 'invokeBatch', 'invokeBatch', 'openSession', 'closeSession', 'listTAs', 'attest', 'toString', '__proto__', 'other'), anyField),
    ta: fc.oneof(nameLike, anyField),
    command: fc.oneof(nameLike, anyField),
    params: jsonish,
    sessionId: fc.oneof(idLike, anyField),
    nonce: fc.oneof(fc.string({ minLength: 6, maxLength: 130 }), anyField),
    claims: fc.oneof(fc.dictionary(fc.string(), jsonish, { maxKeys: 3 }), anyField),
    items: fc.oneof(batchItems, anyField),
    extra: anyField,
  },
  { requiredKeys: [] },
);

const response = fc.record(
  { v: fc.oneof(fc.constant(1), anyField), id: fc.oneof(idLike, anyField), ok: fc.oneof(fc.constant(true), fc.constant(false), anyField), result: jsonish, items: fc.oneof(resultItems, anyField), extra: anyField },
  { requiredKeys: [] },
);

// What arrives on the wire is JSON text.
const viaJson = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

const OPS = new Set(['invoke', 'invokeBatch', 'openSession', 'closeSession', 'listTAs', 'attest']);
const refusal = (f: () => unknown): EnclaveEdgeError | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e as EnclaveEdgeError;
  }
};

describe('the wire schemas', () => {
  it('answer any taRequest text with a request or BAD_PARAMETERS naming the problem, and decoding its values is the one content check', () => {
    fc.assert(fc.property(request, (r) => {
      const text = JSON.stringify(r);
      const err = refusal(() => parseTARequest(text));
      if (err) {
        expect(err).toBeInstanceOf(EnclaveEdgeError);
        expect(err.code).toBe('BAD_PARAMETERS');
        expect(err.message).toMatch(/^invalid taRequest/);
        return;
      }
      const req = parseTARequest(text) as Record<string, unknown>;
      expect(OPS.has(req.op as string)).toBe(true);
      const values = [req.params, req.claims, ...(Array.isArray(req.items) ? req.items.map((i: { params?: unknown }) => i.params) : [])].filter((v) => v !== undefined);
      for (const v of values) {
        const e = refusal(() => decodeValue(v));
        if (e) expect(e.code).toBe('BAD_PARAMETERS');
      }
    }), { numRuns: 1_000 });
  });

  it('answer any taResponse text with a response or BAD_FORMAT', () => {
    fc.assert(fc.property(response, (r) => {
      const err = refusal(() => parseTAResponse(JSON.stringify(r)));
      if (err) expect(err.code).toBe('BAD_FORMAT');
    }), { numRuns: 1_000 });
  });

  it('accept ordinary valid messages and hand the parsed values through untouched (no second walk or copy)', () => {
    fc.assert(fc.property(fc.uuid(), fc.jsonValue({ maxDepth: 5 }), (id, params) => {
      const req = viaJson({ v: 1, id, deadline: Date.now() + 5000, op: 'invoke', ta: 'sensor-signer', command: 'sign', params });
      const checked = taRequestSchema.parse(req) as { params?: unknown };
      expect(checked.params).toBe((req as { params?: unknown }).params);
      expect(parseTAResponse(JSON.stringify({ v: 1, id, ok: true, result: params }))).toEqual({ v: 1, id, ok: true, result: viaJson(params) });
    }), { numRuns: 1000 });
    expect(parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'attest', ta: 'x', nonce: '12345678', claims: { a: [1] } }))).toMatchObject({ claims: { a: [1] } });
    expect(parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'closeSession', ta: 'x', sessionId: 's-1' }))).toMatchObject({ sessionId: 's-1' });
    expect(parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'invokeBatch', ta: 'x', command: 'c', items: [{}] }))).toMatchObject({ items: [{}] });
  });

  it('validate invokeBatch as strictly as invoke', () => {
    const ok = { id: 'a', deadline: 1, op: 'invokeBatch', ta: 'x', command: 'c', items: [{ params: 1 }, {}] };
    expect(taRequestSchema.safeParse(ok).success).toBe(true);
    const bad: unknown[] = [
      { ...ok, items: [] },
      { ...ok, items: Array.from({ length: 65 }, () => ({})) },
      { ...ok, items: [{ params: 1, sessionId: 's' }] },
      { ...ok, items: [null] },
      { ...ok, items: {} },
      { ...ok, sessionId: 's' },
      { ...ok, params: 1 },
      { ...ok, ta: 'Bad Name' },
      { ...ok, command: 'a b' },
      (({ items, ...rest }) => rest)(ok),
    ];
    for (const x of bad) expect(() => parseTARequest(JSON.stringify(x))).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
    expect(parseTAResponse(JSON.stringify({ id: 'a', ok: true, items: [{ ok: true, result: 1 }, { ok: false, error: { code: 'TIMEOUT', message: 'late' } }] })))
      .toMatchObject({ items: [{ ok: true, result: 1 }, { ok: false, error: { code: 'TIMEOUT' } }] });
    for (const x of [
      { id: 'a', ok: true, items: [] },
      { id: 'a', ok: true, items: [{ ok: true }], result: 1 },
      { id: 'a', ok: true, items: [{ ok: true, extra: 1 }] },
      { id: 'a', ok: true, items: [{ ok: false, error: { code: 'NOPE', message: 'x' } }] },
      { id: 'a', ok: false, items: [{ ok: true }] },
    ]) {
      expect(() => parseTAResponse(JSON.stringify(x))).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
    }
  });

  it('name the offending field', () => {
    expect(() => parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'invoke', ta: 'Bad Name', command: 'ping' }))).toThrow(/invalid taRequest at "ta"/);
    expect(() => parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'invoke', ta: 'x', command: 'ping', extra: 1 }))).toThrow(/invalid taRequest/);
    expect(() => parseTAResponse(JSON.stringify({ id: 'a', ok: true, result: 1, extra: 2 }))).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
    expect(parseTAResponse(JSON.stringify({ id: 'a', ok: false, error: { code: 'TIMEOUT', message: 'late' } }))).toMatchObject({ ok: false, error: { code: 'TIMEOUT' } });
  });

  it('values nested past the limit pass the envelope and are refused where they are decoded', () => {
    const req = parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'invoke', ta: 'x', command: 'c', params: deep(65) }));
    expect(() => decodeValue(req.op === 'invoke' ? req.params : null)).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/deeper than 64/) }));
    expect(decodeValue(deep(64))).toEqual(deep(64));
    expect(() => parseTARequest(JSON.stringify({ id: 'a', deadline: 1, op: 'attest', ta: 'x', nonce: '12345678', claims: [1] }))).toThrow(/invalid taRequest at "claims"/);
  });
});
