/**
 * ta-runtime against a hostile TA or caller: log-line forgery, malformed and oversized direct
 * method payloads, error bodies, and the bounds of the dedupe cache.
 */
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime, DedupeCache, handleRuntimeMethod } from '@enclave-edge/ta-runtime';
import { createLogger } from '@enclave-edge/observability';
import { LIMITS } from '@enclave-edge/protocol';
import { newSigner, signedBundle, type TestSigner } from './bundles.js';

const SPOOF_TA = `module.exports = { commands: {
  spoof: (ctx) => { ctx.log.error('payment approved', { ta: 'billing', level: 'fatal', msg: 'forged', time: 0, pid: 1 }); return 1; },
  boom: () => { throw new Error('inner detail'); },
} };`;

let signer: TestSigner;
let rt: TARuntime;
const lines: string[] = [];

beforeAll(async () => {
  signer = newSigner();
  const log = createLogger({ name: 'sec', level: 'debug', destination: { write: (l: string) => lines.push(l) } });
  rt = new TARuntime({ backend: new EmulatedBackend(), log, sources: { bundleDir: '/nonexistent' }, events: { event() {}, report() {} }, drainMs: 1000 });
  const bundle = await signedBundle(signer, SPOOF_TA, { name: 'probe' });
  // allowRemoteLoad: these tests exercise loadTA past the O5 switch.
  await rt.reconcile({ policy: { trustedSigners: { dev: signer.signerId }, allowEmulated: true, allowRemoteLoad: true }, tas: { probe: { source: 'base64:' + Buffer.from(bundle).toString('base64') } } });
});
afterAll(() => rt.stop());

describe('TA log lines', () => {
  // fixed (security: H6 ta-runtime): fields were spread over the line, so a TA could log as
  // another TA, at another severity (GetModuleLogs filters on it) and with a forged time.
  it('a TA cannot forge its name, the severity or the timestamp of its log lines (fixed)', async () => {
    await rt.dispatch({ id: 'l1', op: 'invoke', ta: 'probe', command: 'spoof', deadline: Date.now() + 5000 } as never);
    const line = await vi.waitUntil(() => lines.find((l) => l.includes('payment approved')), { timeout: 20_000, interval: 10 });
    expect(line!.startsWith('<3>')).toBe(true); // error severity, as the TA called log.error
    expect(line).not.toMatch(/^<\d> 1970-/);
    const extra = JSON.parse(line!.slice(line!.indexOf('payment approved ') + 'payment approved '.length)) as Record<string, unknown>;
    expect(extra.ta).toBe('probe');
    expect(extra.level).toBeUndefined();
    expect(extra.time).toBeUndefined();
  });
});

describe('management methods', () => {
  it('unknown methods, malformed and oversized payloads get a coded error without a stack', async () => {
    const results = await Promise.all([
      handleRuntimeMethod('exec', {}, rt),
      handleRuntimeMethod('loadTA', { name: 'probe', bundle: 'not base64!!' }, rt),
      handleRuntimeMethod('loadTA', { name: '../../etc', bundle: '' }, rt),
      handleRuntimeMethod('getEvidence', { ta: 'probe', nonce: 'x'.repeat(LIMITS.maxMethodPayloadBytes + 10) }, rt),
      handleRuntimeMethod('listTAs', { extra: { a: Array(10).fill({}) } }, rt),
      handleRuntimeMethod('unloadTA', null, rt),
    ]);
    for (const r of results) {
      expect(r.status).toBeGreaterThanOrEqual(400);
      const body = JSON.stringify(r.payload);
      expect(body).toMatch(/"code":"[A-Z_]+"/);
      expect(body).not.toMatch(/\n\s+at |\.ts:\d+|\.js:\d+|node:internal/);
    }
    expect(results[3]!.status).toBe(413);
  });

  it('a loadTA of a bundle by an untrusted signer is refused and does not replace anything', async () => {
    const evil = await signedBundle(newSigner(), SPOOF_TA, { name: 'probe2' });
    const r = await handleRuntimeMethod('loadTA', { name: 'probe2', bundle: Buffer.from(evil).toString('base64') }, rt);
    expect(r).toMatchObject({ status: 403, payload: { error: { code: 'POLICY_VIOLATION' } } });
    await expect(rt.dispatch({ id: 'l2', op: 'invoke', ta: 'probe2', command: 'boom', deadline: Date.now() + 5000 } as never)).rejects.toMatchObject({ code: expect.stringMatching(/UNAVAILABLE|ITEM_NOT_FOUND/) });
  });

  it('a TA error reaches the caller as TA_ERROR with the message only', async () => {
    await expect(rt.dispatch({ id: 'l3', op: 'invoke', ta: 'probe', command: 'boom', deadline: Date.now() + 5000 } as never)).rejects.toMatchObject({ code: 'TA_ERROR', message: expect.not.stringMatching(/\n\s+at /) });
  });
});

describe('dedupe cache', () => {
  it('stays bounded under a flood of distinct request ids and runs a duplicate once', async () => {
    const cache = new DedupeCache<number>(100, 60_000);
    let runs = 0;
    for (let i = 0; i < 10_000; i++) cache.run(`id-${i}`, async () => ++runs);
    expect(cache.size).toBe(100);
    const a = cache.run('same', async () => ++runs);
    const b = cache.run('same', async () => ++runs);
    expect(b.duplicate).toBe(true);
    expect(await b.value).toBe(await a.value);
    expect(runs).toBe(10_001);
  });
});
