/** The standby pool: prepared workers, each used by one enclave instance only. */
import { describe, it, expect, vi } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { trackedEnclaves } from './tracked.js';
import { makeTestBundle, testManifest, KITCHEN_SINK_TA } from '@enclave-edge/enclave/testing';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const { track, backendWith } = trackedEnclaves();

describe('standby pool', () => {
  it('hands each prepared worker to one enclave only: TAs created in sequence never share a thread', async () => {
    const backend = backendWith();
    const seen = new Set<number>();
    for (let i = 0; i < 3; i++) {
      await backend.prewarm();
      const standing = backend.standbyStats().threadIds;
      expect(standing).toHaveLength(1);
      const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: `seq-${i}` })));
      expect(e.lastStartup).toMatchObject({ origin: 'standby', bootMs: 0, lockdownMs: 0 });
      const tid = e.lastStartup!.threadId;
      expect(standing).toContain(tid); // it was the standby…
      expect(seen.has(tid)).toBe(false); // …and a worker no TA had before
      seen.add(tid);
      expect(await e.invoke(undefined, 'echo', i)).toBe(i);
      // Used workers are never returned to the pool, not even after their enclave is gone.
      await e.destroy();
      await backend.prewarm();
      expect(backend.standbyStats().threadIds.some((t) => seen.has(t))).toBe(false);
    }
    expect(backend.standbyStats()).toMatchObject({ hits: 3, misses: 0 });
  });

  it('gives every instance of an instance-per-session TA its own worker', async () => {
    const backend = backendWith();
    await backend.prewarm();
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'per-session', session: { singleInstance: false, multiSession: true, keepAlive: false } })));
    // create() proved the code loads on a spare instance (on a standby); the first session takes
    // that one. Later instances start in the TA's own process (a standby lives in a process of
    // its own, so it cannot serve a second instance of a TA that already has one): fresh workers.
    const ids = new Set<number>();
    const pid = e.processInfo()!.pid;
    for (let i = 0; i < 3; i++) {
      await backend.prewarm();
      const sid = await e.openSession();
      expect(e.lastStartup!.origin).toBe(i === 0 ? 'standby' : 'fresh');
      expect(e.processInfo()!.pid).toBe(pid);
      ids.add(e.lastStartup!.threadId);
      await e.closeSession(sid);
    }
    expect(ids.size).toBe(3);
  });

  it('serves only TAs of its limits shape; other shapes spawn fresh and are prepared from then on', async () => {
    const backend = backendWith();
    await backend.prewarm();
    const odd = makeTestBundle(KITCHEN_SINK_TA, { name: 'odd-heap', limits: { heapMb: 48 } });
    const first = track(await backend.create(odd));
    expect(first.lastStartup!.origin).toBe('fresh');
    await backend.prewarm();
    expect(backend.standbyStats().shapes.sort()).toEqual(['js:heap48:stack1', 'js:heap64:stack1']);
    const second = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'odd-heap-2', limits: { heapMb: 48 } })));
    expect(second.lastStartup!.origin).toBe('standby');
    // A debug TA needs a different lockdown: not the release standby.
    const dbg = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'dbg', debug: true })));
    expect(dbg.lastStartup!.origin).toBe('fresh');
  });

  it('keeps the heap limit for a pooled instance: OUT_OF_MEMORY, then a restart that serves', async () => {
    const backend = backendWith();
    const limits = { heapMb: 32, callTimeoutMs: 20_000 };
    await backend.prewarm(testManifest({ limits }));
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'pooled-hungry', limits })));
    expect(e.lastStartup!.origin).toBe('standby');
    await expect(e.invoke(undefined, 'allocate')).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    expect(await e.invoke(undefined, 'echo', 'after')).toBe('after');
    expect(e.stats().restarts).toBe(1);
  });

  it('keeps the call timeout for a pooled instance: TIMEOUT, restart, and the restart takes a fresh standby', async () => {
    const backend = backendWith();
    await backend.prewarm();
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'pooled-spin', limits: { callTimeoutMs: 150 } })));
    expect(e.lastStartup!.origin).toBe('standby');
    const before = e.lastStartup!.threadId;
    await backend.prewarm();
    await expect(e.invoke(undefined, 'spin')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(await e.invoke(undefined, 'echo', 1)).toBe(1);
    expect(e.stats().restarts).toBe(1);
    expect(e.lastStartup).toMatchObject({ origin: 'standby' });
    expect(e.lastStartup!.threadId).not.toBe(before);
  });

  it('standby: 0 spawns a fresh worker per instance and keeps none', async () => {
    const backend = backendWith({ standby: 0 });
    await backend.prewarm();
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'no-pool' })));
    expect(e.lastStartup).toMatchObject({ origin: 'fresh' });
    expect(e.lastStartup!.lockdownMs).toBeGreaterThan(0);
    expect(await e.invoke(undefined, 'echo', 'x')).toBe('x');
    // The marker: a pooled backend's refill after a create made later than ours. Once it has
    // been scheduled, a refill of the unpooled backend would have been too.
    const pooled = backendWith({ standby: 1 });
    await pooled.prewarm();
    track(await pooled.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'pool-marker' })));
    await vi.waitUntil(() => pooled.standbyStats().spawned === 2, { timeout: 20_000, interval: 5 });
    expect(backend.standbyStats()).toMatchObject({ size: 0, spawned: 0, ready: 0, booting: 0, threadIds: [] });
    expect(() => new EmulatedBackend({ standby: -1 })).toThrow(/standby must be an integer/);
  });

  it('throws away a standby worker that died and starts the next enclave on a fresh one', async () => {
    const backend = backendWith();
    await backend.prewarm();
    const [w] = backend.pool.standing();
    const exited = new Promise((r) => w!.worker.once('exit', r));
    await w!.worker.terminate();
    await exited;
    expect(backend.standbyStats()).toMatchObject({ ready: 0, booting: 0, discarded: 1, threadIds: [] });
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'after-death' })));
    expect(e.lastStartup!.origin).toBe('fresh');
    expect(await e.invoke(undefined, 'echo', 2)).toBe(2);
  });

  it('destroy() terminates the standby workers; later creates spawn fresh', async () => {
    const backend = backendWith({ standby: 2 });
    await backend.prewarm();
    const workers = backend.pool.standing().map((s) => s.worker);
    expect(workers).toHaveLength(2);
    const exits = workers.map((w) => new Promise<number>((r) => w.once('exit', r)));
    await backend.destroy();
    await Promise.all(exits);
    expect(workers.every((w) => w.threadId === -1)).toBe(true);
    expect(backend.standbyStats()).toMatchObject({ size: 0, ready: 0, booting: 0, threadIds: [] });
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'after-close' })));
    expect(e.lastStartup!.origin).toBe('fresh');
    await e.destroy();
    await new Promise((r) => setImmediate(r));
    expect(backend.standbyStats().threadIds).toEqual([]);
  });

  it('an idle standby does not keep the process alive', async () => {
    const script = `
      import { EmulatedBackend } from '@enclave-edge/enclave';
      import { makeTestBundle } from '@enclave-edge/enclave/testing';
      const b = new EmulatedBackend();
      const e = await b.create(makeTestBundle('module.exports = { commands: { ping: () => 1 } };'));
      await e.invoke(undefined, 'ping');
      await e.destroy();
      await b.prewarm();
      console.log(JSON.stringify(b.standbyStats()));
    `;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    // It exited by itself (no timeout kill) with a prepared worker still standing by.
    expect(JSON.parse(out)).toMatchObject({ ready: 1 });
  });
});
