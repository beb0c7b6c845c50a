// Pipelines and direct-method handling against an in-process stand-in for edgeHub + ta-runtime
// (the real SDK Message; the full MQTT path is in tests/e2e).
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import type { Message } from 'azure-iot-device';
import { TAClient, jsonMessage, messageBytes } from '@enclave-edge/ta-client';
import { parseTARequest, serializeMessage, okResponse, errorResponse } from '@enclave-edge/protocol';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createLogger, createMetrics, IntervalStats } from '@enclave-edge/observability';
import { Pipelines, handleMethod } from '@enclave-edge/host-module';
import { CallRecorder } from '@enclave-edge/host-module/call-recorder';

class FakeHub extends EventEmitter {
  outputs: Array<{ output: string; msg: Message }> = [];
  async sendOutputEvent(output: string, msg: Message) {
    if (output !== 'taRequest') {
      this.outputs.push({ output, msg });
      return {};
    }
    const req = parseTARequest(messageBytes(msg));
    const res = req.op === 'invoke' && req.command === 'sign'
      ? okResponse(req.id, { signed: req.params ?? null })
      : errorResponse(req.id, new EnclaveEdgeError('ITEM_NOT_FOUND', `no command "${req.op === 'invoke' ? req.command : req.op}"`));
    setImmediate(() => this.emit('inputMessage', 'taResponse', jsonMessage('taResponse', serializeMessage(res))));
    return {};
  }
}

function setup() {
  const hub = new FakeHub();
  const ta = new TAClient(hub).start();
  const metrics = createMetrics({ module: 'test', defaultMetrics: false });
  const recorder = new CallRecorder(metrics, new IntervalStats());
  const errors: Array<{ pipeline: string; code: string }> = [];
  const log = createLogger({ name: 'test', destination: { write: () => undefined } });
  const pipelines = new Pipelines({ ta, send: (o, m) => hub.sendOutputEvent(o, m), recorder, log, defaultTimeoutMs: () => 2000, onError: (pipeline, e) => errors.push({ pipeline, code: e.code }) });
  return { hub, ta, pipelines, errors, recorder, metrics };
}

describe('pipelines', () => {
  it('reports invalid and disabled pipelines and runs the valid ones', async () => {
    const { hub, pipelines } = setup();
    const status = pipelines.configure({
      sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' },
      off: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'x', enabled: false },
      broken: { input: 'sensor', ta: 'Bad Name', command: 'sign', output: 'y' },
      $version: 3,
    });
    expect(status.sign).toMatchObject({ status: 'active' });
    expect(status.off).toMatchObject({ status: 'disabled' });
    expect(status.broken).toMatchObject({ status: 'invalid', error: expect.stringContaining('ta') });
    const msg = new device.Message(JSON.stringify({ machine: { temperature: 21.5 } }));
    msg.properties.add('sensorId', 't1');
    msg.messageId = 'm-1';
    await pipelines.onMessage('sensor', msg);
    expect(hub.outputs).toHaveLength(1);
    const out = hub.outputs[0]!;
    expect(out.output).toBe('signed');
    expect(JSON.parse(Buffer.from(messageBytes(out.msg)).toString())).toEqual({ signed: { machine: { temperature: 21.5 } } });
    expect(out.msg.properties.getValue('sensorId')).toBe('t1');
    expect(out.msg.properties.getValue('pipeline')).toBe('sign');
    expect(out.msg.correlationId).toBe('m-1');
    expect(pipelines.processed).toBe(1);
  });

  it('passes non-JSON bodies as binary and counts TA failures without throwing', async () => {
    const { hub, pipelines, errors } = setup();
    pipelines.configure({ p: { input: 'raw', ta: 'sensor-signer', command: 'sign', output: 'o' }, q: { input: 'raw', ta: 'sensor-signer', command: 'missing', output: 'o2' } });
    await pipelines.onMessage('raw', new device.Message(Buffer.from([0xff, 0x00, 0x01])));
    expect(JSON.parse(Buffer.from(messageBytes(hub.outputs[0]!.msg)).toString())).toEqual({ signed: { $binary: '/wAB' } });
    expect(errors).toEqual([{ pipeline: 'q', code: 'ITEM_NOT_FOUND' }]);
  });
});

describe('host-module direct methods', () => {
  it('returns {result} on success and {error} with the taxonomy status otherwise', async () => {
    const { ta, recorder } = setup();
    const ctx = { ta, recorder, defaultTimeoutMs: () => 2000, health: async () => ({ status: 'ok' }) };
    expect(await handleMethod('invokeTA', { ta: 'sensor-signer', command: 'sign', params: { a: 1 } }, ctx)).toEqual({ status: 200, payload: { result: { signed: { a: 1 } } } });
    expect(await handleMethod('invokeTA', { ta: 'sensor-signer', command: 'nope' }, ctx)).toMatchObject({ status: 404, payload: { error: { code: 'ITEM_NOT_FOUND' } } });
    expect(await handleMethod('invokeTA', { ta: 'x', command: 'c', extra: true }, ctx)).toMatchObject({ status: 400, payload: { error: { code: 'BAD_PARAMETERS' } } });
    expect(await handleMethod('invokeTA', { ta: 'x', command: 'c', params: 'p'.repeat(130 * 1024) }, ctx)).toMatchObject({ status: 413 });
    expect(await handleMethod('attest', { ta: 'x', nonce: 'short' }, ctx)).toMatchObject({ status: 400 });
    expect(await handleMethod('health', null, ctx)).toEqual({ status: 200, payload: { status: 'ok' } });
    expect(await handleMethod('bogus', {}, ctx)).toMatchObject({ status: 404 });
  });
});
