import { describe, expect, it } from 'vitest';
import { EnclaveEdgeError, ERROR_CODES, ErrorCodes, isEnclaveEdgeError, toEnclaveEdgeError, statusOf } from '@enclave-edge/errors';

describe('error taxonomy', () => {
  it('gives every code an HTTP status the host-module may return', () => {
    const allowed = new Set([400, 403, 404, 409, 413, 500, 501, 503, 504]);
    for (const code of ERROR_CODES) expect(allowed.has(ErrorCodes[code].status), code).toBe(true);
  });

  it('round-trips through its JSON wire form', () => {
    const e = new EnclaveEdgeError('BUSY', 'queue full', { detail: { queued: 64 } });
    const back = EnclaveEdgeError.fromJSON(JSON.parse(JSON.stringify(e)));
    expect(back).toBeInstanceOf(EnclaveEdgeError);
    expect(back.code).toBe('BUSY');
    expect(back.message).toBe('queue full');
    expect(back.detail).toEqual({ queued: 64 });
    expect(back.status).toBe(503);
  });

  it('turns unknown wire codes and garbage into INTERNAL, never throws', () => {
    expect(EnclaveEdgeError.fromJSON({ code: 'NOPE', message: 'x' }).code).toBe('INTERNAL');
    expect(EnclaveEdgeError.fromJSON(null).code).toBe('INTERNAL');
    expect(EnclaveEdgeError.fromJSON('str').message).toBe('malformed error body');
  });

  it('wraps foreign errors without exposing a stack in the message', () => {
    const wrapped = toEnclaveEdgeError(new TypeError('bad thing'), 'TA_ERROR');
    expect(wrapped.code).toBe('TA_ERROR');
    expect(wrapped.message).toBe('bad thing');
    expect(JSON.stringify(wrapped)).not.toContain('at ');
    expect(toEnclaveEdgeError({ code: 'TIMEOUT', message: 'late' }).code).toBe('TIMEOUT');
    expect(isEnclaveEdgeError(wrapped, 'TA_ERROR')).toBe(true);
    expect(isEnclaveEdgeError(wrapped, 'BUSY')).toBe(false);
    expect(statusOf('PAYLOAD_TOO_LARGE')).toBe(413);
  });
});
