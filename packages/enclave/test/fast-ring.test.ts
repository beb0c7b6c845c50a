import { describe, it, expect } from 'vitest';
import { createRing, RingView, layoutOf, FREE, REQ, RESP } from '@enclave-edge/enclave/internals';

describe('fast-path ring layout', () => {
  it('records its geometry in the header', () => {
    const sab = createRing({ slots: 4, slotBytes: 256 });
    expect(layoutOf(sab)).toEqual({ slots: 4, slotBytes: 256 });
  });

  it('round-trips requests and responses, UTF-8 included', () => {
    const ring = new RingView(createRing({ slots: 2, slotBytes: 256 }));
    expect(ring.writeRequest(1, 'grüß', '{"v":"€"}')).toBe(true);
    ring.setState(1, REQ);
    expect(ring.state(1)).toBe(REQ);
    expect(ring.readRequest(1)).toEqual({ command: 'grüß', json: '{"v":"€"}' });
    expect(ring.writeResponse(1, false, '{"code":"TA_ERROR","message":"x"}')).toBe(true);
    ring.setState(1, RESP);
    expect(ring.readResponse(1)).toEqual({ ok: false, json: '{"code":"TA_ERROR","message":"x"}' });
    expect(ring.state(0)).toBe(FREE);
  });

  it('refuses what does not fit a slot (the caller falls back to postMessage)', () => {
    const ring = new RingView(createRing({ slots: 1, slotBytes: 64 }));
    expect(ring.writeRequest(0, 'ping', JSON.stringify('x'.repeat(100)))).toBe(false);
    expect(ring.writeRequest(0, 'ping', JSON.stringify('é'.repeat(40)))).toBe(false);
    expect(ring.writeResponse(0, true, JSON.stringify('y'.repeat(100)))).toBe(false);
    expect(ring.writeRequest(0, 'ping', '{"n":1}')).toBe(true);
  });
});
