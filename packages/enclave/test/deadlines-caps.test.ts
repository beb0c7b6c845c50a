/**
 * Who may end an instance (only the TA's own call timeout, never a caller's deadline), how a
 * failed TA comes back (bounded back-off, operator reset), and the instance caps (per TA, in
 * total, implicit calls within maxConcurrency).
 */
import { describe, it, expect } from 'vitest';
import { type EmulatedEnclave, type EnclaveEvent } from '@enclave-edge/enclave';
import { trackedEnclaves } from './tracked.js';
import { makeTestBundle } from '@enclave-edge/enclave/testing';

const { track, backendWith } = trackedEnclaves();

/** `hold` waits until `release` (same instance); `bump` counts per instance; `spin` never returns. */
const GATED = String.raw`
let n = 0;
const waiting = [];
module.exports = { commands: {
  bump: () => ++n,
  hold: () => new Promise((r) => waiting.push(r)).then(() => 'released'),
  release: () => { const k = waiting.length; waiting.splice(0).forEach((r) => r()); return k; },
  held: () => waiting.length,
  spin: () => { for (;;); },
  echo: (ctx, p) => p,
  gate: (ctx, p) => ctx.host.call('gate', p),
} };`;

const nextEvent = (e: EmulatedEnclave, type: EnclaveEvent['type']) => new Promise<EnclaveEvent>((r) => e.on('event', (ev) => ev.type === type && r(ev)));

describe('deadlines: a caller bounds only its own wait', () => {
  it('short caller deadlines get TIMEOUT and never end the shared instance', async () => {
    const e = track(await backendWith().create(makeTestBundle(GATED, { name: 'deadline-shared', limits: { maxConcurrency: 16 } })));
    expect(await e.invoke(undefined, 'bump')).toBe(1);
    const sid = await e.openSession();
    const patient = e.invoke(undefined, 'hold');
    for (let i = 0; i < 6; i++) {
      await expect(e.invoke(i % 2 ? sid : undefined, 'hold', null, { timeoutMs: 20 })).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining("caller's 20 ms") });
    }
    // All seven are still running in the one instance; releasing them ends them normally.
    expect(await e.invoke(undefined, 'held')).toBe(7);
    expect(await e.invoke(undefined, 'release')).toBe(7);
    expect(await patient).toBe('released');
    expect(await e.invoke(sid, 'bump')).toBe(2); // same instance: its state survived
    expect(e.stats()).toMatchObject({ state: 'ready', restarts: 0 });
  });

  it('the TA own callTimeoutMs still ends a runaway instance', async () => {
    const e = track(await backendWith().create(makeTestBundle(GATED, { name: 'deadline-own', limits: { callTimeoutMs: 200 } })));
    await expect(e.invoke(undefined, 'spin', null, { timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('the instance was terminated') });
    expect(await e.invoke(undefined, 'echo', 1)).toBe(1);
  });
});

describe('failed is not forever', () => {
  it('a crash-looping TA is retried after a bounded, doubling back-off, and an operator reset brings it back at once', async () => {
    const b = backendWith({ restart: { maxRestarts: 1, backoffMs: 1, backoffMaxMs: 1, failedRetryMs: 50, failedRetryMaxMs: 60_000 } });
    const e = track(await b.create(makeTestBundle(GATED, { name: 'failed-retry', limits: { callTimeoutMs: 100 } })));
    const crashTwice = async () => {
      await expect(e.invoke(undefined, 'spin')).rejects.toMatchObject({ code: 'TIMEOUT' });
      await expect(e.invoke(undefined, 'spin')).rejects.toMatchObject({ code: expect.stringMatching(/TIMEOUT|TA_FAILED/) });
    };
    let failed = nextEvent(e, 'failed');
    await crashTwice();
    expect(await failed).toMatchObject({ retryInMs: 50 });
    await expect(e.invoke(undefined, 'echo', 1)).rejects.toMatchObject({ code: 'TA_FAILED', message: expect.stringContaining('retried in 50 ms') });
    const recovering = nextEvent(e, 'recovering');
    expect(await recovering).toMatchObject({ after: 'back-off', failures: 1 });
    expect(await e.invoke(undefined, 'echo', 2)).toBe(2);

    failed = nextEvent(e, 'failed');
    await crashTwice();
    expect(await failed).toMatchObject({ retryInMs: 100 }); // doubled
    expect(e.stats()).toMatchObject({ state: 'failed', failures: 2 });
    await e.reset();
    expect(e.stats().state).toBe('ready');
    expect(await e.invoke(undefined, 'echo', 3)).toBe(3);
  });
});

describe('instance caps', () => {
  const perSession = { singleInstance: false, multiSession: true, keepAlive: false };

  it('openSession beyond the manifest limit answers BUSY naming it; an operator cap lowers it', async () => {
    const b = backendWith();
    const e = track(await b.create(makeTestBundle(GATED, { name: 'cap-manifest', session: perSession, limits: { maxInstances: 2 } })));
    await e.openSession();
    await e.openSession();
    await expect(e.openSession()).rejects.toMatchObject({ code: 'BUSY', message: expect.stringContaining('limits.maxInstances of 2') });
    const o = track(await b.create(makeTestBundle(GATED, { name: 'cap-operator', session: perSession, limits: { maxInstances: 8 } }), { maxInstances: 1 }));
    const sid = await o.openSession();
    await expect(o.openSession()).rejects.toMatchObject({ code: 'BUSY', message: expect.stringContaining("operator's cap of 1") });
    await o.closeSession(sid);
    await o.openSession(); // the slot is free again
  });

  it('the total cap across TAs answers BUSY naming maxInstancesTotal', async () => {
    const b = backendWith({ maxInstancesTotal: 2 });
    track(await b.create(makeTestBundle(GATED, { name: 'total-a' })));
    track(await b.create(makeTestBundle(GATED, { name: 'total-b' })));
    await expect(b.create(makeTestBundle(GATED, { name: 'total-c' }))).rejects.toMatchObject({ code: 'BUSY', message: expect.stringContaining('maxInstancesTotal 2') });
  });

  it('idle sessions expire and free their instance', async () => {
    const expired: string[] = [];
    let onExpired: () => void = () => undefined;
    const b = backendWith();
    const e = track(
      await b.create(makeTestBundle(GATED, { name: 'cap-idle', session: perSession, limits: { maxInstances: 1 } }), {
        sessionIdleTimeoutMs: 30,
        log: (_l, _ta, message) => {
          if (message.includes('expired')) (expired.push(message), onExpired());
        },
      }),
    );
    const gone = new Promise<void>((r) => (onExpired = r));
    const sid = await e.openSession();
    await gone;
    await expect(e.invoke(sid, 'echo', 1)).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    expect(expired[0]).toContain(sid);
    await e.openSession(); // its one instance slot is free again
  });

  it('maxConcurrency 1: concurrent implicit calls run one at a time, in one process, on no extra instances', async () => {
    let running = 0;
    let peak = 0;
    let peakInstances = 0;
    const pids = new Set<number>();
    let e!: EmulatedEnclave;
    const b = backendWith();
    e = track(
      await b.create(makeTestBundle(GATED, { name: 'one-at-a-time', session: perSession, hostCalls: ['gate'], limits: { maxConcurrency: 1 } }), {
        hostCalls: {
          gate: async (_ta, p) => {
            running++;
            peak = Math.max(peak, running);
            peakInstances = Math.max(peakInstances, e.stats().instances);
            pids.add(e.processInfo()!.pid);
            await new Promise((r) => setImmediate(r));
            running--;
            return p;
          },
        },
      }),
    );
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => e.invoke(undefined, 'gate', i)));
    expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(peak).toBe(1);
    expect(peakInstances).toBeLessThanOrEqual(2); // the one running, and at most one prepared spare
    expect(pids.size).toBe(1);
  });
});
