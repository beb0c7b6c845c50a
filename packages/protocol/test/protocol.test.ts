import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import {
  decodeValue, encodeValue, parseTARequest, parseTAResponse, serializeMessage, errorResponse, okResponse,
  invokeTASchema, parseWith, checkPayloadSize, taEntrySchema, runtimeSettingsSchema, methodError, salvageRequestId, LIMITS,
} from '@enclave-edge/protocol';

const valueArb = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$binary', '$literal', '$x')), tie('value'), { maxKeys: 3 }),
  ),
}));

/** JSON has no -0: it comes back as 0, at any depth. */
function jsonZero(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (Array.isArray(v)) return v.map(jsonZero);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonZero(x)]));
  }
  return v;
}

describe('Value codec', () => {
  it('round-trips any value through JSON text, binaries included', () => {
    fc.assert(fc.property(valueArb.value, (v) => {
      const back = decodeValue(JSON.parse(JSON.stringify(encodeValue(v as never))));
      expect(back).toEqual(jsonZero(v));
    }), { numRuns: 500 });
  });
  it('encodes bytes as {$binary} and keeps a user object named $binary literal', () => {
    expect(encodeValue(new Uint8Array([1, 2, 3]))).toEqual({ $binary: 'AQID' });
    const literal = { $binary: 'AQID' };
    expect(decodeValue(JSON.parse(JSON.stringify(encodeValue(literal))))).toEqual(literal);
  });
  it('keeps inherited names ("__proto__", "constructor") as own keys and never changes a prototype', () => {
    const wire = JSON.parse('{"__proto__":{"polluted":1},"constructor":"c","toString":[1],"$x":{"$binary":"AQ=="}}');
    const value = decodeValue(wire) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor', 'toString', '$x']);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ polluted: 1 });
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
    const back = encodeValue(value as never) as Record<string, unknown>;
    expect(JSON.stringify(back)).toBe(JSON.stringify(wire));
    expect(encodeValue({ $only: 1 })).toEqual({ $literal: { $only: 1 } });
    expect(decodeValue({ $literal: { $binary: 'AQ==' } })).toEqual({ $binary: 'AQ==' });
  });

  it('refuses malformed base64 and excessive depth with BAD_PARAMETERS', () => {
    expect(() => decodeValue({ $binary: 'not base64!' })).toThrow(/base64/);
    let deep: unknown = 1;
    for (let i = 0; i < LIMITS.maxValueDepth + 5; i++) deep = [deep];
    expect(() => decodeValue(deep)).toThrow(EnclaveEdgeError);
  });
});

describe('taRequest / taResponse', () => {
  const now = Date.now() + 5000;
  it('parses a valid invoke and rejects unknown fields', () => {
    const r = parseTARequest(JSON.stringify({ id: 'a1', op: 'invoke', ta: 'hello', command: 'ping', deadline: now }));
    expect(r).toMatchObject({ op: 'invoke', ta: 'hello', command: 'ping' });
    expect(() => parseTARequest(JSON.stringify({ id: 'a1', op: 'invoke', ta: 'hello', command: 'ping', deadline: now, extra: 1 }))).toThrow(/invalid taRequest/);
  });
  it('names the offending field', () => {
    try {
      parseTARequest(JSON.stringify({ id: 'a1', op: 'invoke', ta: 'Bad Name', command: 'ping', deadline: now }));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(EnclaveEdgeError);
      expect((e as EnclaveEdgeError).code).toBe('BAD_PARAMETERS');
      expect((e as Error).message).toContain('"ta"');
    }
  });
  it('refuses oversize and non-JSON bodies with the right codes', () => {
    expect(() => parseTARequest('x'.repeat(LIMITS.maxMessageBytes + 1))).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }));
    expect(() => parseTARequest('{nope')).toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
  });
  it('round-trips ok and error responses', () => {
    const ok = parseTAResponse(serializeMessage(okResponse('a1', { x: 1 })));
    expect(ok).toMatchObject({ id: 'a1', ok: true, result: { x: 1 } });
    const er = parseTAResponse(serializeMessage(errorResponse('a2', new EnclaveEdgeError('ITEM_NOT_FOUND', 'no TA "x"'))));
    expect(er).toMatchObject({ id: 'a2', ok: false, error: { code: 'ITEM_NOT_FOUND', message: 'no TA "x"' } });
  });
  it('salvages the id of an invalid request so it can still be answered', () => {
    expect(salvageRequestId(JSON.stringify({ id: 'r-9', op: 'bogus' }))).toBe('r-9');
    expect(salvageRequestId('garbage')).toBeUndefined();
  });
});

describe('method payloads and desired properties', () => {
  it('validates invokeTA and bounds timeoutMs', () => {
    expect(parseWith(invokeTASchema, { ta: 'hello', command: 'ping' }, 'invokeTA payload')).toEqual({ ta: 'hello', command: 'ping' });
    expect(() => parseWith(invokeTASchema, { ta: 'hello', command: 'ping', timeoutMs: 10 ** 9 }, 'invokeTA payload')).toThrow(/timeoutMs/);
    expect(() => checkPayloadSize({ p: 'x'.repeat(LIMITS.maxMethodPayloadBytes) }, 'invokeTA payload')).toThrow(expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' }));
  });
  it('validates TA entries and applies policy defaults that trust nothing', () => {
    expect(taEntrySchema.parse({ source: '/app/tas/hello.tab' }).enabled).toBe(true);
    expect(taEntrySchema.safeParse({ source: 'http://insecure/x.tab' }).success).toBe(false);
    const s = runtimeSettingsSchema.parse({});
    expect(s.policy).toMatchObject({ trustedSigners: {}, allowDebug: false, allowEmulated: false, allowRemoteLoad: false, minSvn: {} });
  });
  it('maps errors to status codes for direct methods', () => {
    expect(methodError(new EnclaveEdgeError('TIMEOUT', 'late'))).toEqual({ status: 504, payload: { error: { code: 'TIMEOUT', message: 'late' } } });
    expect(methodError(new Error('boom')).status).toBe(500);
  });
});
