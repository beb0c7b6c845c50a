/** Emulated-backend specifics beyond the conformance suite: crash loops, debugging. */
import { describe, it, expect, afterAll, vi } from 'vitest';
import { build } from 'esbuild';
import { EmulatedBackend, type EmulatedEnclave, type EnclaveEvent } from '@enclave-edge/enclave';
import { makeTestBundle, KITCHEN_SINK_TA } from '@enclave-edge/enclave/testing';

const live: EmulatedEnclave[] = [];
afterAll(async () => {
  await Promise.all(live.map((e) => e.destroy()));
});
const track = (e: EmulatedEnclave) => (live.push(e), e);

const DEBUG_TA_TS = `import { defineTA } from './sdk';

interface Order { qty: number }

function check(order: Order): number {
  if (order.qty < 0) {
    throw new Error('negative quantity');
  }
  return order.qty * 2;
}

export default defineTA({
  commands: {
    double: (_ctx: unknown, p: unknown) => check(p as Order),
  },
});
`;
const THROW_LINE = DEBUG_TA_TS.split('\n').findIndex((l) => l.includes("throw new Error('negative")) + 1;

async function buildDebugTA(): Promise<{ code: string; map: string }> {
  const r = await build({
    stdin: { contents: DEBUG_TA_TS, sourcefile: 'src/order-ta.ts', loader: 'ts', resolveDir: '/' },
    bundle: true,
    format: 'cjs',
    platform: 'neutral',
    sourcemap: 'external',
    outfile: 'order-ta.js',
    write: false,
    plugins: [
      {
        name: 'sdk',
        setup(b) {
          b.onResolve({ filter: /^\.\/sdk$/ }, () => ({ path: 'sdk', namespace: 'sdk' }));
          b.onLoad({ filter: /.*/, namespace: 'sdk' }, () => ({ contents: 'export const defineTA = (d) => d;', loader: 'js' }));
        },
      },
    ],
  });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
  const map = r.outputFiles.find((f) => f.path.endsWith('.map'))!.text;
  return { code: js, map };
}

describe('crash loops', () => {
  it('backs off, then marks the TA failed with the reason; calls get TA_FAILED', async () => {
    const backend = new EmulatedBackend({ restart: { maxRestarts: 2, windowMs: 60_000, backoffMs: 5 } });
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'looper', limits: { callTimeoutMs: 50 } })));
    const events: EnclaveEvent[] = [];
    e.on('event', (ev) => events.push(ev));
    for (let i = 0; i < 3; i++) await expect(e.invoke(undefined, 'spin')).rejects.toMatchObject({ code: 'TIMEOUT' });
    await vi.waitUntil(() => e.stats().state === 'failed', { timeout: 20_000, interval: 10 });
    const err = (await e.invoke(undefined, 'echo', 1).catch((x: unknown) => x)) as { code: string; message: string };
    expect(err.code).toBe('TA_FAILED');
    expect(err.message).toMatch(/3 crashes.*TIMEOUT/);
    expect(events.filter((x) => x.type === 'crashed')).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ type: 'failed' });
  });

  it('a TA that never finishes starting fails create() with TIMEOUT', async () => {
    const backend = new EmulatedBackend({ startAllowanceMs: 200 });
    const hang = `module.exports = { onCreate: () => new Promise(() => {}), commands: { ok: () => 1 } };`;
    await expect(backend.create(makeTestBundle(hang, { name: 'slow-start', limits: { callTimeoutMs: 100 } }))).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('onCreate') });
    const loop = `for (;;) {}`;
    await expect(backend.create(makeTestBundle(loop, { name: 'loop-start', limits: { callTimeoutMs: 100 } }))).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('an unhandled rejection inside the TA is logged, not a crash', async () => {
    const logs: string[] = [];
    const code = `module.exports = { commands: { leak: () => { Promise.reject(new Error('forgotten')); return 1; }, ok: () => 2 } };`;
    const e = track(await new EmulatedBackend().create(makeTestBundle(code, { name: 'leaky' }), { log: (l, ta, m) => logs.push(`${l}:${ta}:${m}`) }));
    expect(await e.invoke(undefined, 'leak')).toBe(1);
    await vi.waitUntil(() => logs.some((l) => l.startsWith('warn:leaky:') && l.includes('forgotten')), { timeout: 20_000, interval: 10 });
    expect(await e.invoke(undefined, 'ok')).toBe(2);
    expect(e.stats().restarts).toBe(0);
  });
});

describe('debugging', () => {
  it('maps a debug TA’s stack to TypeScript lines through the source map', async () => {
    const { code, map } = await buildDebugTA();
    const e = track(await new EmulatedBackend().create(makeTestBundle(code, { name: 'order-ta', debug: true }, map)));
    expect(await e.invoke(undefined, 'double', { qty: 2 })).toBe(4);
    const err = (await e.invoke(undefined, 'double', { qty: -1 }).catch((x: unknown) => x)) as { code: string; message: string; detail?: { stack?: string } };
    expect(err.code).toBe('TA_ERROR');
    expect(err.message).toBe('negative quantity');
    expect(err.detail?.stack).toContain(`src/order-ta.ts:${THROW_LINE}:`);
    expect(err.detail?.stack).not.toMatch(/file:\/\/|node:internal/);
  });

  it('refuses to inspect a release TA, naming why; without inspect it runs with no inspector', async () => {
    const backend = new EmulatedBackend({ standby: 0 });
    for (const inspect of [true, 'wait'] as const) {
      await expect(backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'release' }), { inspect })).rejects.toMatchObject({
        code: 'POLICY_VIOLATION',
        message: expect.stringMatching(/TA "release" is a release build: only debug builds .* can be inspected, because an inspector has full control of the TA/),
      });
    }
    const e = track(await backend.create(makeTestBundle(KITCHEN_SINK_TA, { name: 'release' })));
    expect(e.inspectorUrl).toBeUndefined();
    expect(await e.invoke(undefined, 'echo', 1)).toBe(1);
  });

  it('opens an inspector (DevTools protocol on 127.0.0.1) for a debug TA when asked', async () => {
    const { code, map } = await buildDebugTA();
    const e = track(await new EmulatedBackend().create(makeTestBundle(code, { name: 'inspected', debug: true }, map), { inspect: true }));
    expect(e.inspectorUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+$/);
    const port = new URL(e.inspectorUrl!).port;
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    expect(targets.map((t) => t.webSocketDebuggerUrl)).toContain(e.inspectorUrl);
    expect(await e.invoke(undefined, 'double', { qty: 3 })).toBe(6);
  });
});
