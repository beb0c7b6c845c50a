// TAClient against an in-process stand-in for edgeHub + ta-runtime, using the SDK's real Message.
// The full path over MQTT and the simulator is covered in tests/e2e.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Message } from 'azure-iot-device';
import { TAClient, jsonMessage, messageBytes } from '@enclave-edge/ta-client';
import { parseTARequest, serializeMessage, okResponse, errorResponse } from '@enclave-edge/protocol';
import { EnclaveEdgeError } from '@enclave-edge/errors';

class Loopback extends EventEmitter {
  sent: Message[] = [];
  mode: 'answer' | 'silent' | 'fail' | 'duplicate' = 'answer';
  async sendOutputEvent(output: string, msg: Message) {
    if (this.mode === 'fail') throw new Error('not connected');
    this.sent.push(msg);
    if (this.mode === 'silent') return {};
    const req = parseTARequest(messageBytes(msg));
    const res = req.op === 'invoke' && req.command === 'fail'
      ? errorResponse(req.id, new EnclaveEdgeError('TA_ERROR', 'it failed'))
      : okResponse(req.id, req.op === 'invoke' ? { echo: req.params ?? null, output } : req.op === 'openSession' ? { sessionId: 's-1' } : { tas: [{ name: 'hello', status: 'loaded' }] });
    setImmediate(() => {
      const reply = jsonMessage('taResponse', serializeMessage(res), { correlationId: req.id });
      this.emit('inputMessage', 'taResponse', reply);
      if (this.mode === 'duplicate') this.emit('inputMessage', 'taResponse', reply);
    });
    return {};
  }
}

describe('TAClient', () => {
  it('sends a JSON taRequest with type and message id, and resolves with the decoded result', async () => {
    const hub = new Loopback();
    const ta = new TAClient(hub).start();
    const r = await ta.invoke('hello', 'ping', { data: new Uint8Array([7, 8]) });
    expect(r).toEqual({ echo: { data: new Uint8Array([7, 8]) }, output: 'taRequest' });
    const sent = hub.sent[0]!;
    expect(sent.contentType).toBe('application/json');
    expect(sent.contentEncoding).toBe('utf-8');
    expect(sent.properties.getValue('type')).toBe('taRequest');
    expect(JSON.parse(Buffer.from(messageBytes(sent)).toString()).id).toBe(sent.messageId);
    expect(await ta.openSession('hello')).toBe('s-1');
    expect(await ta.listTAs()).toEqual([{ name: 'hello', status: 'loaded' }]);
  });
  it('rejects with the error the runtime sent', async () => {
    const ta = new TAClient(new Loopback());
    await expect(ta.invoke('hello', 'fail')).rejects.toMatchObject({ code: 'TA_ERROR', message: 'it failed' });
  });
  it('times out (504), then reports UNAVAILABLE (503) after repeated silence, and recovers on an answer', async () => {
    const hub = new Loopback();
    hub.mode = 'silent';
    const ta = new TAClient(hub, { unreachableAfter: 2 });
    await expect(ta.invoke('hello', 'ping', null, { timeoutMs: 20 })).rejects.toMatchObject({ code: 'TIMEOUT', status: 504 });
    await expect(ta.invoke('hello', 'ping', null, { timeoutMs: 20 })).rejects.toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(ta.reachable).toBe(false);
    hub.mode = 'answer';
    await expect(ta.invoke('hello', 'ping')).resolves.toBeTruthy();
    expect(ta.reachable).toBe(true);
    expect(ta.inFlight).toBe(0);
  });
  it('fails UNAVAILABLE when edgeHub refuses the message, and ignores duplicate answers', async () => {
    const hub = new Loopback();
    hub.mode = 'fail';
    const ta = new TAClient(hub);
    await expect(ta.invoke('hello', 'ping')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    hub.mode = 'duplicate';
    await expect(ta.invoke('hello', 'ping')).resolves.toBeTruthy();
    expect(ta.inFlight).toBe(0);
  });
  it('refuses invalid names before sending', async () => {
    const hub = new Loopback();
    const ta = new TAClient(hub);
    await expect(ta.invoke('Not A TA', 'ping')).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringContaining('"ta"') });
    expect(hub.sent).toHaveLength(0);
  });
  it('stops cleanly, failing what is still waiting', async () => {
    const hub = new Loopback();
    hub.mode = 'silent';
    const ta = new TAClient(hub);
    const p = ta.invoke('hello', 'ping', null, { timeoutMs: 5000 });
    await new Promise((r) => setImmediate(r));
    ta.stop();
    await expect(p).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
