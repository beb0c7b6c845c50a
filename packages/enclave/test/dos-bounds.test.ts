/**
 * Threat model O1 and O2 with real TAs: a TA flooding service calls or log lines stays within
 * the per-instance bounds, measured by host-side counters and the process's memory.
 */
import { describe, it, expect, afterAll, vi } from 'vitest';
import { EmulatedBackend, type EmulatedEnclave, type LogLevel, type SealedStore, type TrustServices } from '@enclave-edge/enclave';
import { makeTestBundle, InMemoryTrustServicesForTests } from '@enclave-edge/enclave/testing';
import { SVC_MAX_IN_FLIGHT, WORKER_LOG_LIMITS, binaryLimitBytes } from '@enclave-edge/enclave/internals';

const FLOOD_TA = String.raw`
'use strict';
const kept = [];
module.exports = { __esModule: true, default: { commands: {
  async storageFlood(ctx, p) {
    const value = new Uint8Array(p.bytes);
    const outcomes = [];
    for (let i = 0; i < p.count; i++) outcomes.push(ctx.storage.put('k' + (i % 50), value).then(() => 'ok', (e) => e.code));
    const tally = {};
    for (const o of await Promise.all(outcomes)) tally[o] = (tally[o] || 0) + 1;
    return tally;
  },
  async storageAwaited(ctx, p) {
    const value = new Uint8Array(p.bytes);
    for (let i = 0; i < p.count; i++) await ctx.storage.put('a' + i, value);
    return p.count;
  },
  logFlood(ctx, p) {
    const line = 'x'.repeat(p.bytes);
    for (let i = 0; i < p.count; i++) ctx.log.info(line);
    return p.count;
  },
  hold(ctx, p) { const keep = []; for (let i = 0; i < p.mb; i++) keep.push(new Uint8Array(1 << 20).fill(1)); return keep.length; },
  keep(ctx, p) { kept.push(new Uint8Array(p.mb << 20).fill(1)); return kept.length; },
  logSome(ctx, p) { for (let i = 0; i < p.count; i++) ctx.log.info('line ' + i, { i }); return p.count; },
} } };
`;

const live: EmulatedEnclave[] = [];
const backend = new EmulatedBackend({ standby: 0 });
afterAll(async () => {
  await Promise.all(live.map((e) => e.destroy()));
  await backend.destroy();
});

/** Trust services whose storage counts the writes running at once (a host-side counter). */
function countingServices(): { services: TrustServices; peak: () => number; writes: () => number } {
  const inner = new InMemoryTrustServicesForTests();
  let running = 0;
  let peak = 0;
  let writes = 0;
  const services: TrustServices = {
    seal: (id, d, o) => inner.seal(id, d, o),
    unseal: (id, b, o) => inner.unseal(id, b, o),
    attest: (id, o) => inner.attest(id, o),
    storage(id): SealedStore {
      const s = inner.storage(id);
      return {
        get: (k) => s.get(k),
        delete: (k) => s.delete(k),
        list: (p) => s.list(p),
        async put(k, v) {
          running++;
          writes++;
          peak = Math.max(peak, running);
          try {
            await new Promise((r) => setTimeout(r, 1)); // a write takes a while, as on disk
            await s.put(k, v);
          } finally {
            running--;
          }
        },
      };
    },
  };
  return { services, peak: () => peak, writes: () => writes };
}

/** Highest RSS growth over a baseline while `work` runs, sampled from this (idle) thread. */
async function peakRssGrowth<T>(work: () => Promise<T>): Promise<{ result: T; growthMb: number }> {
  global.gc?.();
  const base = process.memoryUsage.rss();
  let peak = base;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 2);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, growthMb: (peak - base) / 2 ** 20 };
  } finally {
    clearInterval(t);
  }
}

describe('O1: service calls in flight per TA instance', () => {
  it('4000 un-awaited 1 MiB storage writes: 32 reach the host, the rest fail BUSY, memory stays bounded', async () => {
    const c = countingServices();
    // What is bounded is the calls in flight, not how fast 4000 MiB of requests are made: the TA's
    // own call timeout is set far beyond a loaded machine's pace, so the result is the bound's alone.
    const e = await backend.create(makeTestBundle(FLOOD_TA, { name: 'svc-flood', limits: { callTimeoutMs: 600_000 } }), { services: c.services });
    live.push(e);
    const { result, growthMb } = await peakRssGrowth(() => e.invoke(undefined, 'storageFlood', { count: 4000, bytes: 1 << 20 }));
    expect(result).toEqual({ ok: SVC_MAX_IN_FLIGHT, BUSY: 4000 - SVC_MAX_IN_FLIGHT });
    expect(c.writes()).toBe(SVC_MAX_IN_FLIGHT);
    expect(c.peak()).toBeLessThanOrEqual(SVC_MAX_IN_FLIGHT);
    // Before the bound: 0.7–2 GB. Now at most 32 MiB of requests are queued to the host.
    expect(growthMb).toBeLessThan(400);
    // The instance is fine and serves on.
    expect(await e.invoke(undefined, 'storageAwaited', { count: 3, bytes: 16 })).toBe(3);
    expect(e.stats().state).toBe('ready');
  }, 300_000);
});

describe('O2: log volume per TA instance', () => {
  it('10⁵ lines of 8 KiB from one call: the host gets the budget, then one summary of the drop', async () => {
    const lines: { level: LogLevel; message: string }[] = [];
    const e = await backend.create(makeTestBundle(FLOOD_TA, { name: 'log-flood' }), { log: (level, _ta, message) => lines.push({ level, message }) });
    live.push(e);
    const started = performance.now();
    const { growthMb } = await peakRssGrowth(() => e.invoke(undefined, 'logFlood', { count: 100_000, bytes: 8192 }));
    const elapsedS = (performance.now() - started) / 1000;
    // The summary comes once the drop has been quiet for a second.
    await vi.waitUntil(() => lines.some((l) => l.message.includes('were dropped')), { timeout: 60_000, interval: 50 });
    const floods = lines.filter((l) => l.message.startsWith('xxxx'));
    const summaries = lines.filter((l) => l.message.includes('were dropped'));
    const L = WORKER_LOG_LIMITS;
    const maxBytes = L.burstBytes + L.bytesPerSecond * (elapsedS + 2);
    expect(floods.length).toBeGreaterThan(0);
    expect(floods.length * 8192).toBeLessThanOrEqual(maxBytes);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.level).toBe('warn');
    const dropped = Number(/^(\d+) log lines/.exec(summaries[0]!.message)?.[1]);
    expect(dropped + floods.length).toBe(100_000);
    expect(growthMb).toBeLessThan(300);
  });

  it('a TA within the budget loses nothing and gets no summary', async () => {
    const lines: string[] = [];
    const e = await backend.create(makeTestBundle(FLOOD_TA, { name: 'log-normal' }), { log: (_l, _t, m) => lines.push(m) });
    live.push(e);
    expect(await e.invoke(undefined, 'logSome', { count: 200 })).toBe(200);
    await vi.waitUntil(() => lines.length >= 200, { timeout: 30_000, interval: 10 });
    expect(lines).toHaveLength(200);
    expect(lines[199]).toBe('line 199');
  });
});

describe('O14 (partly): binary data outside the heap limit', () => {
  it('a call holding 200 MiB of Uint8Arrays (heapMb 64) ends OUT_OF_MEMORY; the restarted instance serves', async () => {
    const e = await backend.create(makeTestBundle(FLOOD_TA, { name: 'hold', limits: { callTimeoutMs: 600_000 } })); // the memory bound decides, not the machine's pace
    live.push(e);
    expect(binaryLimitBytes(64)).toBe(80 * 2 ** 20);
    await expect(e.invoke(undefined, 'hold', { mb: 200 })).rejects.toMatchObject({ code: 'OUT_OF_MEMORY', message: expect.stringMatching(/more than 80 MB of binary data/) });
    expect(await e.invoke(undefined, 'hold', { mb: 40 })).toBe(40); // within the limit, after the restart
  });

  it('binary data kept across calls is caught at the call that crosses the limit', async () => {
    const e = await backend.create(makeTestBundle(FLOOD_TA, { name: 'keep', limits: { callTimeoutMs: 600_000 } }));
    live.push(e);
    const kept: number[] = [];
    let failure: unknown;
    for (let i = 0; i < 12 && !failure; i++) {
      try {
        kept.push((await e.invoke(undefined, 'keep', { mb: 10 })) as number);
      } catch (err) {
        failure = err;
      }
    }
    expect(failure).toMatchObject({ code: 'OUT_OF_MEMORY' });
    expect(kept.length).toBeGreaterThanOrEqual(6); // 60 MiB was fine
    expect(kept.length).toBeLessThanOrEqual(8); // 90 MiB was not
  });
});
