/**
 * Threat model O1–O3, host side: a worker that no longer follows the protocol (as after an SES
 * escape) is played by a plain script. Whatever it posts, the host
 * ends that instance (TA_CRASHED) and never throws out of a handler, never runs more than the
 * bounded number of service calls, and never lets a log flood through.
 */
import { describe, it, expect, afterEach, vi } from 'vitest';
import { Worker } from 'node:worker_threads';
import type { Value } from '@enclave-edge/ta-sdk';
import { Instance, type DeathReason, shapeOf, SVC_MAX_IN_FLIGHT, HOST_LOG_LIMITS } from '@enclave-edge/enclave/internals';
import type { StandbyWorker } from '@enclave-edge/enclave/internals';
import { testManifest } from '@enclave-edge/enclave/testing';
import { EnclaveEdgeError } from '@enclave-edge/errors';

/** The hostile worker: answers `init` with `ready`, then misbehaves as `mode` says. */
const HOSTILE = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const mode = workerData.mode;
const post = (m) => parentPort.postMessage(m);
parentPort.on('message', (m) => {
  if (m.t === 'init') {
    post({ t: 'ready', startup: { entered: 0, lockedDown: 0, assigned: 0, loaded: 0, created: 0 } });
    switch (mode) {
      case 'bad-level': return post({ t: 'log', level: 'constructor', message: 'hi' });
      case 'huge-log': return post({ t: 'log', level: 'info', message: 'x'.repeat(100000) });
      case 'not-object': return post(42);
      case 'inspector-unasked': return post({ t: 'inspector', url: 'ws://0.0.0.0:9229/\u001b[2Jforged' });
      case 'unknown-type': return post({ t: 'shell', cmd: 'rm -rf /' });
      case 'svc-flood':
        for (let i = 0; i < 500; i++) post({ t: 'svc', id: i + 1, op: 'storage.put', args: ['k' + i, new Uint8Array(65536)] });
        return;
      case 'svc-unknown-op': return post({ t: 'svc', id: 1, op: '__proto__', args: [] });
      case 'log-flood':
        for (let i = 0; i < 20000; i++) post({ t: 'log', level: 'info', message: 'y'.repeat(1024) });
        return;
    }
  }
  if (m.t === 'destroy') post({ t: 'destroyed' });
  if (m.t === 'call') {
    if (mode === 'done-forged-code') post({ t: 'done', id: m.id, ok: false, error: { code: 'TIMEOUT', message: 'forged' } });
    if (mode === 'done-map') post({ t: 'done', id: m.id, ok: true, value: new Map([[1, 2]]) });
    if (mode === 'done-ok') post({ t: 'done', id: m.id, ok: true, value: { fine: true } });
    if (mode === 'batch-to-call') post({ t: 'batchPart', id: m.id, from: 0, outcomes: [{ ok: true, value: 1 }], last: true, restart: true });
  }
  if (m.t === 'batch') {
    const ok = { ok: true, value: 1 };
    if (mode === 'batch-skip') post({ t: 'batchPart', id: m.id, from: 1, outcomes: [ok], last: true, restart: true });
    if (mode === 'batch-extra') post({ t: 'batchPart', id: m.id, from: 0, outcomes: [ok, ok, ok], last: true, restart: true });
    if (mode === 'batch-single') post({ t: 'done', id: m.id, ok: true, value: 1 });
    if (mode === 'batch-forged-code') post({ t: 'batchPart', id: m.id, from: 0, outcomes: [ok, { ok: false, error: { code: 'BUSY', message: 'forged' } }], last: true, restart: true });
    if (mode === 'batch-ok') {
      post({ t: 'batchPart', id: m.id, from: 0, outcomes: [ok], last: false, restart: true });
      post({ t: 'batchPart', id: m.id, from: 1, outcomes: [{ ok: false, error: { code: 'TA_ERROR', message: 'its own' } }], last: true, restart: true });
    }
  }
});
`;

const live: Instance[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((i) => i.destroy()));
});

interface Harness {
  inst: Instance;
  death: Promise<DeathReason>;
  services: { op: string; args: Value[] }[];
  logs: { level: string; message: string }[];
}

async function hostile(mode: string): Promise<Harness> {
  const manifest = testManifest({ name: `hostile-${mode}` });
  const worker = new Worker(HOSTILE, { eval: true, workerData: { mode } });
  const services: Harness['services'] = [];
  const logs: Harness['logs'] = [];
  const inst = new Instance({
    init: {
      manifest,
      ta: { name: manifest.name, uuid: manifest.uuid, version: '1.0.0', measurement: 'm', signerId: 's', productId: 1, securityVersion: 1, debug: false },
      code: new Uint8Array(0),
      maxPayloadBytes: 1 << 20,
      inspect: false,
    },
    shape: shapeOf(manifest),
    standby: { state: 'ready', adopt: () => worker } as unknown as StandbyWorker,
    heapMb: 64,
    stackKb: 1024,
    maxConcurrency: 4,
    queueLimit: 8,
    callTimeoutMs: 5000,
    startTimeoutMs: 5000,
    hooks: {
      service: (op, args) => {
        services.push({ op, args });
        return new Promise((r) => setTimeout(() => r(null), 200)); // still in flight when the next ones arrive
      },
      log: (level, message) => logs.push({ level, message }),
      error: (w) => new EnclaveEdgeError(w.code, w.message),
    },
  });
  live.push(inst);
  const death = new Promise<DeathReason>((r) => inst.once('death', r));
  await inst.ready;
  return { inst, death, services, logs };
}

const protocolDeath = (d: DeathReason, what: RegExp) => {
  expect(d.code).toBe('TA_CRASHED');
  expect(d.reason).toMatch(/broke the host protocol/);
  expect(d.reason).toMatch(what);
};

describe('O3: a forged error code', () => {
  it('an error code the TA may not pass out (TIMEOUT) is refused', async () => {
    const b = await hostile('done-forged-code');
    await expect(b.inst.call('invoke', undefined, 'echo', null)).rejects.toMatchObject({ code: 'TA_CRASHED' });
    protocolDeath(await b.death, /may not pass out \(TIMEOUT\)/);
  });
});

describe('O3: the host validates the messages a worker posts', () => {
  it('a log level outside the four ends the instance (never used as a method name)', async () => {
    const h = await hostile('bad-level');
    protocolDeath(await h.death, /level is not debug, info, warn or error/);
    expect(h.logs).toHaveLength(0);
  });

  it('an over-long log message, a non-object message, an unknown type, an unknown service', async () => {
    protocolDeath(await (await hostile('huge-log')).death, /log message that is not a string of at most 8192/);
    protocolDeath(await (await hostile('not-object')).death, /not an object with a type/);
    // Only an instance asked to open an inspector may say where one listens (nothing else gets printed as a debugger URL).
    protocolDeath(await (await hostile('inspector-unasked')).death, /an inspector message it was not asked for/);
    protocolDeath(await (await hostile('unknown-type')).death, /unknown message type "shell"/);
    const u = await hostile('svc-unknown-op');
    protocolDeath(await u.death, /unknown service "__proto__"/);
    expect(u.services).toHaveLength(0);
  });

  it('a result that is not a Value (a Map) fails the call and ends the instance', async () => {
    const h = await hostile('done-map');
    await expect(h.inst.call('invoke', undefined, 'echo', null)).rejects.toMatchObject({ code: 'TA_CRASHED' });
    protocolDeath(await h.death, /result that is not a valid value/);
  });

  it('a well-formed answer still gets through', async () => {
    const h = await hostile('done-ok');
    expect(await h.inst.call('invoke', undefined, 'echo', null)).toEqual({ fine: true });
    expect(h.inst.isDead).toBe(false);
  });
});

describe('O1/O2: host-side bounds, whatever the worker claims', () => {
  it('a worker posting 500 service calls without waiting: the host runs 32, then ends it', async () => {
    const h = await hostile('svc-flood');
    protocolDeath(await h.death, /service calls beyond the bound \(32 in flight/);
    expect(h.services).toHaveLength(SVC_MAX_IN_FLIGHT);
    expect(h.inst.limits.svcPeak).toBe(SVC_MAX_IN_FLIGHT);
  });

  it('a worker posting 20 000 log lines directly: the host passes its budget and says once how many it dropped', async () => {
    const started = performance.now();
    const h = await hostile('log-flood');
    await vi.waitUntil(() => h.inst.limits.logsDropped + h.logs.length >= 20000, { timeout: 60_000, interval: 10 });
    const elapsedS = (performance.now() - started) / 1000;
    const passed = h.logs.filter((l) => l.message.startsWith('yyyy'));
    expect(passed.length).toBeGreaterThan(0);
    expect(passed.length).toBeLessThanOrEqual(HOST_LOG_LIMITS.burstLines + HOST_LOG_LIMITS.linesPerSecond * elapsedS + 1);
    expect(passed.length + h.inst.limits.logsDropped).toBe(20000);
    await vi.waitUntil(() => h.logs.some((l) => l.message.includes('were dropped')), { timeout: 60_000, interval: 50 });
    const summaries = h.logs.filter((l) => l.message.includes('were dropped'));
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.message).toMatch(new RegExp(`^${h.inst.limits.logsDropped} log lines`));
    expect(h.inst.isDead).toBe(false); // a flood of valid lines is throttled, not a violation
  });
});

describe('O3: batch answers', () => {
  const items = [1, 2];
  const run = (h: Harness) => {
    const got: unknown[] = [];
    return h.inst.callBatch('echo', items, (k, o) => (got[k] = o.ok ? o.value : (o.error as EnclaveEdgeError).code)).then(() => got);
  };

  it('answers out of order, more answers than items, a single answer to a batch, a forged code: the instance ends, the items fail', async () => {
    for (const [mode, what] of [
      ['batch-skip', /out of order, or not one per item/],
      ['batch-extra', /out of order, or not one per item/],
      ['batch-single', /a single answer to a batch/],
      ['batch-forged-code', /may not pass out \(BUSY\)/],
    ] as const) {
      const h = await hostile(mode);
      expect(await run(h)).toEqual(['TA_CRASHED', 'TA_CRASHED']);
      protocolDeath(await h.death, what);
    }
    const c = await hostile('batch-to-call');
    await expect(c.inst.call('invoke', undefined, 'echo', null)).rejects.toMatchObject({ code: 'TA_CRASHED' });
    protocolDeath(await c.death, /a batch answer to a call that is not a batch/);
  });

  it('well-formed answers in two parts get through, each item its own', async () => {
    const h = await hostile('batch-ok');
    expect(await run(h)).toEqual([1, 'TA_ERROR']);
    expect(h.inst.isDead).toBe(false);
  });
});
