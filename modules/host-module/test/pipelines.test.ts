// Pipelines and direct-method handling against an in-process stand-in for edgeHub + ta-runtime
// (the real SDK Message; the full MQTT path is in tests/e2e).
import { EventEmitter } from 'node:events';
import { generateKeyPairSync } from 'node:crypto';
import { recipientThumbprint } from '@enclave-edge/confidential/sealed-reading';
import { describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import type { Message } from 'azure-iot-device';
import { TAClient, jsonMessage, messageBytes } from '@enclave-edge/ta-client';
import { parseTARequest, serializeMessage, okResponse, errorResponse, batchResponse, type TAResponse } from '@enclave-edge/protocol';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createLogger, createMetrics, IntervalStats } from '@enclave-edge/observability';
import { Pipelines, handleMethod } from '@enclave-edge/host-module';
import { CallRecorder } from '@enclave-edge/module-frame';
import { retryUntil } from '../../../tests/support/eventually.js';

const sign = (params: unknown) => {
  if (params && typeof params === 'object' && (params as { fail?: unknown }).fail) throw new EnclaveEdgeError('BAD_PARAMETERS', 'cannot sign this');
  return { signed: (params ?? null) as never };
};

class FakeHub extends EventEmitter {
  outputs: Array<{ output: string; msg: Message }> = [];
  requests: Array<{ op: string; items: number }> = [];
  /** Answer invokeBatch as a ta-runtime without it would (BAD_PARAMETERS at "op"). */
  oldRuntime = false;
  /** Answer the next this-many requests UNAVAILABLE as a whole (a TA still loading). */
  unavailable = 0;
  /** Request ids as they arrived, and how often each ran. */
  ids: string[] = [];
  /** What each `sign` call was given, and (when set) what it answers instead of { signed }. */
  params: unknown[] = [];
  answer?: (params: unknown) => unknown;
  async sendOutputEvent(output: string, msg: Message) {
    if (output !== 'taRequest') {
      this.outputs.push({ output, msg });
      return {};
    }
    const req = parseTARequest(messageBytes(msg));
    this.ids.push(req.id);
    if (this.unavailable > 0) {
      this.unavailable--;
      const res = errorResponse(req.id, new EnclaveEdgeError('UNAVAILABLE', 'TA "sensor-signer" is still loading; retry shortly'));
      setImmediate(() => this.emit('inputMessage', 'taResponse', jsonMessage('taResponse', serializeMessage(res))));
      return {};
    }
    this.requests.push({ op: req.op, items: req.op === 'invokeBatch' ? req.items.length : 1 });
    const one = (id: string, command: string, params: unknown): TAResponse => {
      if (command !== 'sign') return errorResponse(id, new EnclaveEdgeError('ITEM_NOT_FOUND', `no command "${command}"`));
      try {
        this.params.push(params);
        return okResponse(id, (this.answer ? this.answer(params) : sign(params)) as never);
      } catch (err) {
        return errorResponse(id, err as EnclaveEdgeError);
      }
    };
    let res: TAResponse;
    if (req.op === 'invokeBatch') {
      res = this.oldRuntime
        ? errorResponse(req.id, new EnclaveEdgeError('BAD_PARAMETERS', 'invalid taRequest at "op": Invalid discriminator value'))
        : batchResponse(req.id, req.items.map((i) => {
          const r = one(req.id, req.command, i.params);
          return r.ok ? { ok: true as const, ...('result' in r && r.result !== undefined ? { result: r.result } : {}) } : { ok: false as const, error: r.error };
        }));
    } else {
      res = req.op === 'invoke' ? one(req.id, req.command, req.params) : errorResponse(req.id, new EnclaveEdgeError('ITEM_NOT_FOUND', `no command "${req.op}"`));
    }
    setImmediate(() => this.emit('inputMessage', 'taResponse', jsonMessage('taResponse', serializeMessage(res))));
    return {};
  }
}

/** Where outputs go, standing in for the SDK's single-attempt send: held until acknowledged, failed at once while down. */
class FakeLink {
  /** Each attempt's reading, in the order handed out. */
  attempts: number[] = [];
  acked: number[] = [];
  down = false;
  /** Acknowledge at once (a healthy connection) rather than hold until drop(). */
  autoAck = false;
  private held: Array<{ i: number; resolve: () => void; reject: (e: Error) => void }> = [];
  send(msg: Message): Promise<void> {
    const i = (JSON.parse(Buffer.from(messageBytes(msg)).toString()) as { signed: { i: number } }).signed.i;
    this.attempts.push(i);
    if (this.down) return Promise.reject(new EnclaveEdgeError('UNAVAILABLE', 'not connected'));
    if (this.autoAck) return Promise.resolve(void this.acked.push(i));
    return new Promise((resolve, reject) => this.held.push({ i, resolve: () => (this.acked.push(i), resolve()), reject }));
  }
  /** The connection drops: every held send fails. */
  drop(): void {
    for (const h of this.held.splice(0)) h.reject(new EnclaveEdgeError('UNAVAILABLE', 'connection lost'));
  }
}

function setup(link?: FakeLink) {
  const hub = new FakeHub();
  const ta = new TAClient(hub).start();
  const metrics = createMetrics({ module: 'test', defaultMetrics: false });
  const recorder = new CallRecorder(metrics, new IntervalStats());
  const errors: Array<{ pipeline: string; code: string }> = [];
  const messages: string[] = [];
  const dropped: Array<{ pipeline: string; code: string }> = [];
  const log = createLogger({ name: 'test', destination: { write: () => undefined } });
  const pipelines = new Pipelines({
    ta, send: (o, m) => (link ? link.send(m) : hub.sendOutputEvent(o, m)), recorder, log, defaultTimeoutMs: () => 2000,
    onError: (pipeline, e) => (errors.push({ pipeline, code: e.code }), messages.push(e.message)),
    onDropped: (pipeline, e) => dropped.push({ pipeline, code: e.code }),
  });
  return { hub, ta, pipelines, errors, messages, dropped, recorder, metrics };
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

describe('pipeline batching', () => {
  const reading = (i: number, extra: Record<string, unknown> = {}) => {
    const msg = new device.Message(JSON.stringify({ i, ...extra }));
    msg.properties.add('sensorId', `t${i}`);
    msg.messageId = `m-${i}`;
    return msg;
  };
  const bodyOf = (m: Message) => JSON.parse(Buffer.from(messageBytes(m)).toString()) as { signed: { i: number } };

  it('sends a lone message alone as invoke, as before', async () => {
    const { hub, pipelines } = setup();
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' } });
    await pipelines.onMessage('sensor', reading(1));
    await pipelines.onMessage('sensor', reading(2));
    expect(hub.requests).toEqual([{ op: 'invoke', items: 1 }, { op: 'invoke', items: 1 }]);
    expect(hub.outputs.map((o) => bodyOf(o.msg).signed.i)).toEqual([1, 2]);
  });

  it('batches what waits while the request slots are busy: one output per reading, same body and properties, per-item errors as single-call errors', async () => {
    const { hub, pipelines, errors } = setup();
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' } });
    const n = 100;
    await Promise.all(Array.from({ length: n }, (_, i) => pipelines.onMessage('sensor', reading(i, i % 10 === 5 ? { fail: true } : {}))));
    // The first four find free slots and go alone; the rest wait and go in batches of ≤ 32.
    expect(hub.requests.slice(0, 4)).toEqual(Array.from({ length: 4 }, () => ({ op: 'invoke', items: 1 })));
    const batches = hub.requests.filter((r) => r.op === 'invokeBatch');
    expect(batches.length).toBeGreaterThan(0);
    expect(Math.max(...batches.map((b) => b.items))).toBeLessThanOrEqual(32);
    expect(hub.requests.reduce((a, r) => a + r.items, 0)).toBe(n);
    expect(hub.requests.length).toBeLessThan(15);
    // Output order follows input order; each output carries its source's properties.
    const outs = hub.outputs.filter((o) => o.output === 'signed');
    expect(outs.map((o) => bodyOf(o.msg).signed.i)).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i % 10 !== 5));
    for (const o of outs) {
      const i = bodyOf(o.msg).signed.i;
      expect(o.msg.properties.getValue('sensorId')).toBe(`t${i}`);
      expect(o.msg.properties.getValue('pipeline')).toBe('sign');
      expect(o.msg.properties.getValue('ta')).toBe('sensor-signer');
      expect(o.msg.correlationId).toBe(`m-${i}`);
    }
    expect(errors).toEqual(Array.from({ length: n / 10 }, () => ({ pipeline: 'sign', code: 'BAD_PARAMETERS' })));
    expect(pipelines.processed).toBe(n - n / 10);
    expect(pipelines.failed).toBe(n / 10);
  });

  it('fails every item of a batch the way a single call fails when the request as a whole fails', async () => {
    const { hub, pipelines, errors } = setup();
    pipelines.configure({ bad: { input: 'sensor', ta: 'sensor-signer', command: 'missing', output: 'o' } });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pipelines.onMessage('sensor', reading(i))));
    expect(hub.requests.some((r) => r.op === 'invokeBatch')).toBe(true);
    expect(errors).toHaveLength(20);
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['ITEM_NOT_FOUND']));
  });

  it('falls back to one call per message when ta-runtime does not know invokeBatch', async () => {
    const { hub, pipelines, errors } = setup();
    hub.oldRuntime = true;
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' } });
    await Promise.all(Array.from({ length: 40 }, (_, i) => pipelines.onMessage('sensor', reading(i))));
    expect(errors).toEqual([]);
    expect(hub.outputs.filter((o) => o.output === 'signed')).toHaveLength(40);
    // Batches already sent when the first refusal arrived are refused too (nothing ran); none after.
    expect(hub.requests.filter((r) => r.op === 'invokeBatch').length).toBeLessThanOrEqual(4);
    expect(hub.requests.at(-1)).toEqual({ op: 'invoke', items: 1 });
  });
});

describe('pipeline retries', () => {
  const reading = (i: number) => {
    const msg = new device.Message(JSON.stringify({ i }));
    msg.messageId = `m-${i}`;
    return msg;
  };
  const bodyOf = (m: Message) => JSON.parse(Buffer.from(messageBytes(m)).toString()) as { signed: { i: number } };

  it('retries UNAVAILABLE under the same request id until it runs: every reading once, in order', async () => {
    const { hub, pipelines, errors, dropped } = setup();
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' } });
    hub.unavailable = 6;
    await Promise.all(Array.from({ length: 30 }, (_, i) => pipelines.onMessage('sensor', reading(i))));
    expect(hub.outputs.map((o) => bodyOf(o.msg).signed.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(errors).toEqual([]);
    expect(dropped).toEqual([]);
    expect(pipelines.retried).toBeGreaterThan(0);
    // Every refused request came again under its own id (so ta-runtime could dedupe it).
    const ran = hub.ids.slice(6);
    for (const id of hub.ids.slice(0, 6)) expect(ran).toContain(id);
    expect(new Set(hub.ids.slice(0, 6)).size).toBeLessThan(6);
  });

  it('sends again, in order, the outputs a dropped connection failed; nothing newer is handed out before them', async () => {
    const link = new FakeLink();
    const { hub, pipelines, errors, dropped } = setup(link);
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed' } });
    const first = Array.from({ length: 10 }, (_, i) => pipelines.onMessage('sensor', reading(i)));
    await retryUntil(() => expect(link.attempts).toHaveLength(10), 5000, 5);
    // Dropped with all ten unacknowledged, and still down when the first re-send comes.
    link.down = true;
    link.drop();
    const later = Array.from({ length: 10 }, (_, i) => pipelines.onMessage('sensor', reading(10 + i)));
    await retryUntil(() => {
      expect(hub.params).toHaveLength(20); // the newer ones are signed and wait
      expect(link.attempts.length).toBeGreaterThan(10); // a re-send failed while down
    }, 5000, 5);
    link.down = false;
    link.autoAck = true;
    await Promise.all([...first, ...later]);
    const again = link.attempts.slice(10);
    const probes = again.findIndex((i) => i !== 0);
    expect(probes).toBeGreaterThanOrEqual(2); // the oldest alone: failed at least once, then acknowledged
    expect(again.slice(0, probes)).toEqual(Array(probes).fill(0));
    expect(again.slice(probes)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(link.acked).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(errors).toEqual([]);
    expect(dropped).toEqual([]);
    expect(pipelines.processed).toBe(20);
  });

  it('reports a message dropped, with its code, once its time to live is over', async () => {
    const { hub, pipelines, errors, dropped } = setup();
    pipelines.configure({ sign: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'signed', retryWithinMs: 0 } });
    hub.unavailable = 1;
    await pipelines.onMessage('sensor', reading(1));
    await pipelines.onMessage('sensor', reading(2));
    expect(dropped).toEqual([{ pipeline: 'sign', code: 'UNAVAILABLE' }]);
    expect(errors).toEqual([{ pipeline: 'sign', code: 'UNAVAILABLE' }]);
    expect(hub.outputs.map((o) => bodyOf(o.msg).signed.i)).toEqual([2]);
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

describe('pipelines with a recipient (sealed readings)', () => {
  const raw = new Uint8Array(Buffer.from(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!, 'base64url'));
  const jwk = { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') };
  const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  /** A reading shaped as sensor-signer seals it; host-module checks only its binding (it cannot open it). */
  const sealedShape = (over: Record<string, unknown> = {}) => ({
    v: 1,
    h: b64u({ v: 1, kem: 0x20, kdf: 1, aead: 2, ta: 'sensor-signer', m: 'ab'.repeat(32), pipeline: 'sealed', stream: 'c3RyZWFt', seq: 0, rcpt: recipientThumbprint(raw), kid: 'a2lk', ...over }),
    enc: Buffer.alloc(32, 7).toString('base64url'),
    ct: Buffer.alloc(40, 9).toString('base64url'),
  });
  const reading = (i: number) => {
    const msg = new device.Message(JSON.stringify({ i }));
    msg.messageId = `r-${i}`;
    return msg;
  };

  it('refuses a key that is not a strict X25519 public key: the pipeline is invalid with the reason and never runs', async () => {
    const { hub, pipelines } = setup();
    const status = pipelines.configure({
      short: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'o1', recipient: { ...jwk, x: jwk.x.slice(0, 42) } },
      private: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'o2', recipient: { ...jwk, d: jwk.x } },
      plain: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'o3' },
    });
    expect(status.short).toMatchObject({ status: 'invalid', error: expect.stringContaining('(length)') });
    expect(status.private).toMatchObject({ status: 'invalid', error: expect.stringContaining('(private)') });
    // The plain pipeline on the same input is the marker: it ran, the refused ones did not.
    await pipelines.onMessage('sensor', reading(1));
    expect(hub.params).toEqual([{ i: 1 }]);
    expect(hub.outputs.map((o) => o.output)).toEqual(['o3']);
  });

  it('hands the TA the reading, the key and the pipeline name, and sends on only a reading sealed for this pipeline to that key', async () => {
    const { hub, pipelines, errors, messages } = setup();
    const status = pipelines.configure({ sealed: { input: 'sensor', ta: 'sensor-signer', command: 'sign', output: 'sealedOut', recipient: jwk } });
    expect(status.sealed).toMatchObject({ status: 'active', recipient: recipientThumbprint(raw) });
    const answers: unknown[] = [
      sealedShape(),
      { signed: { i: 2 } }, // plaintext: never sent
      sealedShape({ pipeline: 'other' }),
      sealedShape({ rcpt: recipientThumbprint(new Uint8Array(32).fill(5)) }),
      sealedShape({ ta: 'key-vault' }),
    ];
    hub.answer = () => answers.shift();
    for (let i = 1; i <= 5; i++) await pipelines.onMessage('sensor', reading(i));
    expect(hub.params[0]).toEqual({ reading: { i: 1 }, recipient: jwk, pipeline: 'sealed' });
    expect(hub.outputs).toHaveLength(1);
    expect(JSON.parse(Buffer.from(messageBytes(hub.outputs[0]!.msg)).toString())).toEqual(sealedShape());
    expect(errors.map((e) => e.pipeline)).toEqual(['sealed', 'sealed', 'sealed', 'sealed']);
    expect(messages[0]).toMatch(/answered no reading sealed to it \(sealed reading refused \(malformed\).*nothing was sent/);
    for (const m of messages.slice(1)) expect(m).toContain('(binding)');
    for (const m of messages) expect(m).not.toContain('"i"');
  });
});
