// A runaway TA call: TIMEOUT for the caller, ta.crashed / ta.restarted telemetry, and the TA serves again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { pemSigner } from '@enclave-edge/bundle';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { readFileSync } from 'node:fs';
import { devPolicy, moduleDir, quietLogger } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'ee-spin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TA crash reporting', () => {
  it('reports ta.crashed and ta.restarted after a runaway call, and keeps serving', async () => {
    const signer = pemSigner(readFileSync(join(moduleDir, 'dev/dev-signer.key.pem')));
    await buildTA(join(moduleDir, 'test/fixtures/spin'), { signer, outFile: join(dir, 'spin.tab') });
    const events: Array<{ type: string; body: Record<string, unknown> }> = [];
    const { log } = quietLogger();
    const rt = new TARuntime({ backend: new EmulatedBackend(), log, sources: { bundleDir: dir }, events: { event: (type, body) => events.push({ type, body }), report: () => undefined } });
    try {
      await rt.reconcile({ policy: devPolicy, tas: { spin: { source: 'spin.tab' } } });
      await expect(rt.dispatch({ id: 's1', op: 'invoke', ta: 'spin', command: 'spin', deadline: Date.now() + 10_000 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      await vi.waitUntil(() => events.some((e) => e.type === 'ta.restarted'), { timeout: 20_000, interval: 20 });
      expect(events.find((e) => e.type === 'ta.crashed')?.body).toMatchObject({ ta: 'spin', reason: expect.any(String) });
      expect(events.find((e) => e.type === 'ta.restarted')?.body).toMatchObject({ ta: 'spin', attempt: expect.any(Number) });
      expect(await rt.dispatch({ id: 's2', op: 'invoke', ta: 'spin', command: 'ping', deadline: Date.now() + 10_000 })).toBe('pong');
    } finally {
      await rt.stop();
    }
  }, 30_000);
});
