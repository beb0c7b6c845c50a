import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime, DedupeCache, type TAReport } from '@enclave-edge/ta-runtime';
import { admit, admittedOrThrow } from '@enclave-edge/bundle';
import { runtimePolicySchema } from '@enclave-edge/protocol';
import { buildSampleBundles, devPolicy, quietLogger } from './fixtures.js';

let bundles: ReturnType<typeof buildSampleBundles>;
beforeAll(() => {
  bundles = buildSampleBundles();
});
afterAll(() => bundles?.cleanup());

function makeRuntime() {
  const events: Array<{ type: string; body: Record<string, unknown> }> = [];
  const reports = new Map<string, TAReport | null>();
  const { log } = quietLogger();
  const rt = new TARuntime({
    backend: new EmulatedBackend(),
    log,
    sources: { bundleDir: bundles.dir },
    drainMs: 2000,
    events: { event: (type, body) => events.push({ type, body }), report: (n, r) => reports.set(n, r) },
  });
  return { rt, events, reports };
}

const deadline = () => Date.now() + 10_000;

describe('TARuntime', () => {
  it('loads TAs from desired properties and serves invoke, openSession and listTAs', async () => {
    const { rt, events, reports } = makeRuntime();
    try {
      await rt.reconcile({ policy: devPolicy, tas: { hello: { source: 'hello.tab' }, 'wasm-stats': { source: 'wasm-stats.tab' } } });
      expect(reports.get('hello')).toMatchObject({ status: 'loaded', version: '1.0.0', svn: 1, debug: false, lastError: null });
      expect(reports.get('hello')!.measurement).toMatch(/^[0-9a-f]{64}$/);
      expect(events.filter((e) => e.type === 'ta.loaded').map((e) => e.body.ta).sort()).toEqual(['hello', 'wasm-stats']);
      expect(await rt.dispatch({ id: 'r1', op: 'invoke', ta: 'hello', command: 'ping', deadline: deadline() })).toBe('pong');
      expect(await rt.dispatch({ id: 'r2', op: 'invoke', ta: 'hello', command: 'echo', params: { b: { $binary: 'AQI=' } }, deadline: deadline() })).toEqual({ b: { $binary: 'AQI=' } });
      expect(await rt.dispatch({ id: 'r3', op: 'invoke', ta: 'wasm-stats', command: 'stats', params: [1, 2, 3], deadline: deadline() })).toMatchObject({ count: 3, min: 1, max: 3 });
      const s = (await rt.dispatch({ id: 'r4', op: 'openSession', ta: 'hello', deadline: deadline() })) as { sessionId: string };
      expect(typeof s.sessionId).toBe('string');
      const listed = (await rt.dispatch({ id: 'r5', op: 'listTAs', deadline: deadline() })) as { tas: Array<{ name: string; status: string }> };
      expect(listed.tas.map((t) => [t.name, t.status]).sort()).toEqual([['hello', 'loaded'], ['wasm-stats', 'loaded']]);
    } finally {
      await rt.stop();
    }
  });

  it('runs an invokeBatch: one outcome per item, in order, each failing on its own', async () => {
    const calls: Array<{ ta: string; command: string; err?: string }> = [];
    const { log } = quietLogger();
    const rt = new TARuntime({
      backend: new EmulatedBackend(), log, sources: { bundleDir: bundles.dir }, drainMs: 2000,
      events: { event: () => undefined, report: () => undefined, call: (ta, command, _ms, err) => calls.push({ ta, command, ...(err ? { err: err.code } : {}) }) },
    });
    try {
      await rt.reconcile({ policy: devPolicy, tas: { 'wasm-stats': { source: 'wasm-stats.tab' } } });
      const items = await rt.invokeBatch({ id: 'b1', op: 'invokeBatch', ta: 'wasm-stats', command: 'stats', deadline: deadline(), items: [{ params: [1, 2, 3] }, { params: { not: 'an array' } }, { params: [5] }] });
      expect(items).toHaveLength(3);
      expect(items[0]).toMatchObject({ ok: true, result: { count: 3, min: 1, max: 3 } });
      expect(items[1]).toMatchObject({ ok: false, error: { code: expect.any(String), message: expect.any(String) } });
      expect(items[2]).toMatchObject({ ok: true, result: { count: 1 } });
      // The single-call error for the same params is the item's error.
      const single = await rt.dispatch({ id: 's1', op: 'invoke', ta: 'wasm-stats', command: 'stats', params: { not: 'an array' }, deadline: deadline() }).catch((e) => e);
      expect((items[1] as { error: { code: string } }).error.code).toBe(single.code);
      expect(calls.filter((c) => c.command === 'stats')).toHaveLength(4);
      await expect(rt.invokeBatch({ id: 'b2', op: 'invokeBatch', ta: 'nope', command: 'stats', deadline: deadline(), items: [{}] })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
      await expect(rt.invokeBatch({ id: 'b3', op: 'invokeBatch', ta: 'wasm-stats', command: 'stats', deadline: Date.now() - 1, items: [{}] })).rejects.toMatchObject({ code: 'TIMEOUT' });
    } finally {
      await rt.stop();
    }
  });

  it('rejects a tampered bundle with its reason while other TAs keep serving', async () => {
    const { rt, events, reports } = makeRuntime();
    try {
      const tampered = bundles.bytes('hello');
      tampered[tampered.length - 200]! ^= 0x01;
      const b64 = Buffer.from(tampered).toString('base64');
      await rt.reconcile({ policy: devPolicy, tas: { 'wasm-stats': { source: 'wasm-stats.tab' }, hello: { source: `base64:${b64}` } } });
      const r = reports.get('hello')!;
      expect(r.status).toBe('rejected');
      expect(r.errorCode).toMatch(/SIGNATURE_INVALID|MEASUREMENT_MISMATCH|BAD_FORMAT/);
      expect(events.find((e) => e.type === 'ta.rejected')?.body).toMatchObject({ ta: 'hello', reason: expect.any(String) });
      await expect(rt.dispatch({ id: 'x', op: 'invoke', ta: 'hello', command: 'ping', deadline: deadline() })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(await rt.dispatch({ id: 'y', op: 'invoke', ta: 'wasm-stats', command: 'ping', deadline: deadline() })).toBe('pong');
    } finally {
      await rt.stop();
    }
  });

  it('enforces the policy: untrusted signer, empty trust list, pinned measurement, minimum SVN, emulation', async () => {
    const bytes = bundles.bytes('hello');
    const full = (p: unknown) => runtimePolicySchema.parse(p); // defaults for allowRemoteLoad, maxLimits
    const admitBundle = async (o: { name?: string; policy: ReturnType<typeof full>; pinnedMeasurement?: string }) =>
      admittedOrThrow(await admit(bytes, o.policy, { name: o.name ?? 'hello', backendKind: 'emulated', origin: 'desired', pinnedMeasurement: o.pinnedMeasurement }));
    const base = {};
    await expect(admitBundle({ ...base, policy: full({ ...devPolicy, trustedSigners: { other: 'f'.repeat(64) } }) })).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringContaining('not one of the trusted signers') }));
    await expect(admitBundle({ ...base, policy: full({ ...devPolicy, trustedSigners: {} }) })).rejects.toThrow(/no trusted signers/);
    await expect(admitBundle({ ...base, policy: full(devPolicy), pinnedMeasurement: '0'.repeat(64) })).rejects.toThrow(expect.objectContaining({ code: 'MEASUREMENT_MISMATCH' }));
    await expect(admitBundle({ ...base, policy: full({ ...devPolicy, minSvn: { hello: 2 } }) })).rejects.toThrow(/below the minimum 2/);
    await expect(admitBundle({ ...base, policy: full({ ...devPolicy, allowEmulated: false }) })).rejects.toThrow(/allowEmulated/);
    await expect(admitBundle({ ...base, name: 'other', policy: full(devPolicy) })).rejects.toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect((await admitBundle({ ...base, policy: full(devPolicy) })).manifest.name).toBe('hello');
  });

  it('adds, disables and removes TAs on later desired patches without a restart', async () => {
    const { rt, events, reports } = makeRuntime();
    try {
      await rt.reconcile({ policy: devPolicy, tas: { hello: { source: 'hello.tab' } } });
      await rt.reconcile({ policy: devPolicy, tas: { hello: { source: 'hello.tab' }, 'key-vault': { source: 'key-vault.tab' } } });
      expect(reports.get('key-vault')?.status).toBe('loaded');
      expect(events.filter((e) => e.type === 'ta.loaded')).toHaveLength(2); // hello unchanged: not reloaded
      await rt.reconcile({ policy: devPolicy, tas: { hello: { source: 'hello.tab', enabled: false }, 'key-vault': { source: 'key-vault.tab' } } });
      expect(reports.get('hello')?.status).toBe('disabled');
      await expect(rt.dispatch({ id: 'a', op: 'invoke', ta: 'hello', command: 'ping', deadline: deadline() })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await rt.reconcile({ policy: devPolicy, tas: {} });
      expect(reports.get('key-vault')).toBeNull();
      await expect(rt.dispatch({ id: 'b', op: 'invoke', ta: 'key-vault', command: 'list', deadline: deadline() })).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
      expect(events.some((e) => e.type === 'ta.unloaded' && e.body.ta === 'key-vault')).toBe(true);
    } finally {
      await rt.stop();
    }
  });

  it('lets a call in flight finish when its TA is replaced', async () => {
    const { rt } = makeRuntime();
    try {
      await rt.reconcile({ policy: devPolicy, tas: { 'wasm-stats': { source: 'wasm-stats.tab' } } });
      const values = Array.from({ length: 2000 }, (_, i) => i);
      const inflight = Promise.all(Array.from({ length: 8 }, (_, i) => rt.dispatch({ id: `s${i}`, op: 'invoke', ta: 'wasm-stats', command: 'stats', params: values, deadline: deadline() })));
      // Same TA from another source (inline) → a different fingerprint → replaced.
      const replaced = rt.reconcile({ policy: devPolicy, tas: { 'wasm-stats': { source: `base64:${Buffer.from(bundles.bytes('wasm-stats')).toString('base64')}`, measurement: undefined } } });
      const results = await inflight;
      await replaced;
      for (const r of results) expect(r).toMatchObject({ count: 2000 });
      expect(await rt.dispatch({ id: 'after', op: 'invoke', ta: 'wasm-stats', command: 'ping', deadline: deadline() })).toBe('pong');
    } finally {
      await rt.stop();
    }
  });

  it('refuses requests whose deadline has passed, and reports invalid desired entries', async () => {
    const { rt, reports } = makeRuntime();
    try {
      await rt.reconcile({ policy: devPolicy, tas: { hello: { source: 'http://example.com/x.tab' }, 'Bad.Name': { source: 'x.tab' }, ghost: { source: 'ghost.tab' } } });
      expect(reports.get('hello')).toMatchObject({ status: 'rejected', errorCode: 'CONFIG_INVALID' });
      expect(reports.get('ghost')).toMatchObject({ status: 'rejected', errorCode: 'ITEM_NOT_FOUND' });
      expect(reports.get('Bad.Name')).toMatchObject({ status: 'rejected', errorCode: 'CONFIG_INVALID' });
      await expect(rt.dispatch({ id: 'late', op: 'listTAs', deadline: Date.now() - 1 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    } finally {
      await rt.stop();
    }
  });
});

describe('DedupeCache', () => {
  it('runs a request id once and answers duplicates from the cache, within a bound', async () => {
    const cache = new DedupeCache<number>(3);
    let runs = 0;
    const fn = async () => ++runs;
    expect(await cache.run('a', fn).value).toBe(1);
    const dup = cache.run('a', fn);
    expect(dup.duplicate).toBe(true);
    expect(await dup.value).toBe(1);
    for (const id of ['b', 'c', 'd']) await cache.run(id, fn).value;
    expect(cache.size).toBe(3);
    expect(cache.run('a', fn).duplicate).toBe(false); // evicted: oldest went first
  });
});
