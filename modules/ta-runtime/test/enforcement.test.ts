/**
 * The policy is enforced on every change, fail closed: each tightening retires the running TAs it
 * no longer admits (POLICY_VIOLATION naming the rule, reported `revoked`, a `ta.revoked` event),
 * TAs it still admits keep running untouched, loosening brings revoked ones back, a bad
 * replacement leaves the good version serving, and an invalid policy is refused as a whole.
 * One real runtime (emulated backend, the DEV-signed sample bundles) for the whole file.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime, type TAReport } from '@enclave-edge/ta-runtime';
import { generateSigningKey, pemSigner, signBundle, decodeBundle, encodeBundle } from '@enclave-edge/bundle';
import { buildSampleBundles, devPolicy, quietLogger } from './fixtures.js';

let bundles: ReturnType<typeof buildSampleBundles>;
let rt: TARuntime;
const events: Array<{ type: string; body: Record<string, unknown> }> = [];
const reports = new Map<string, TAReport | null>();
let runtimeReported: Record<string, unknown> = {};
let logLines: string[] = [];

const desiredTAs = { hello: { source: 'hello.tab' }, 'key-vault': { source: 'key-vault.tab' } };
const deadline = () => Date.now() + 10_000;
const ping = () => rt.dispatch({ id: `p${Math.random()}`, op: 'invoke', ta: 'hello', command: 'ping', deadline: deadline() });
const pingBatch = () => rt.invokeBatch({ id: `b${Math.random()}`, op: 'invokeBatch', ta: 'hello', command: 'ping', deadline: deadline(), items: [{}, {}] });
const loadedCount = (ta: string) => events.filter((e) => e.type === 'ta.loaded' && e.body.ta === ta).length;

beforeAll(async () => {
  bundles = buildSampleBundles();
  const { log, lines } = quietLogger();
  logLines = lines;
  rt = new TARuntime({
    backend: new EmulatedBackend(),
    log,
    sources: { bundleDir: bundles.dir },
    drainMs: 2000,
    events: {
      event: (type, body) => events.push({ type, body }),
      report: (n, r) => reports.set(n, r),
      runtimeReport: (patch) => (runtimeReported = { ...runtimeReported, ...patch }),
    },
  });
  await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
  expect(await ping()).toBe('pong');
}, 60_000);
afterAll(async () => {
  await rt?.stop();
  bundles?.cleanup();
});

describe('a tightened policy retires the TAs it no longer admits', () => {
  it.each([
    ['the DEV signer removed (another signer left)', { trustedSigners: { other: 'f'.repeat(64) } }, 'trustedSigners', true],
    ['trustedSigners emptied', { trustedSigners: {} }, 'trustedSigners', true],
    ['minSvn raised above the running SVN', { minSvn: { hello: 2 } }, 'minSvn.hello', false],
    ['allowEmulated: false', { allowEmulated: false }, 'allowEmulated', true],
    ['maxLimits lowered below the TA limits', { maxLimits: { heapMb: 32 } }, 'maxLimits.heapMb', true],
  ] as const)('%s → POLICY_VIOLATION naming %s, reported revoked; loosening brings it back', async (_what, change, rule, kvAffected) => {
    const kvLoads = loadedCount('key-vault');
    const revokedBefore = events.length;
    await rt.reconcile({ policy: { ...devPolicy, ...change }, tas: desiredTAs });

    await expect(ping()).rejects.toMatchObject({ code: 'POLICY_VIOLATION', status: 403, detail: { rule }, message: expect.stringContaining('revoked') });
    await expect(pingBatch()).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { rule } });
    expect(reports.get('hello')).toMatchObject({ status: 'revoked', rule, errorCode: 'POLICY_VIOLATION', svn: 1 });
    const revoked = events.slice(revokedBefore).filter((e) => e.type === 'ta.revoked');
    expect(revoked.find((e) => e.body.ta === 'hello')?.body).toMatchObject({ rule, code: 'POLICY_VIOLATION' });
    // A TA the new policy still admits is not restarted by it.
    expect(reports.get('key-vault')?.status).toBe(kvAffected ? 'revoked' : 'loaded');
    if (!kvAffected) expect(loadedCount('key-vault')).toBe(kvLoads);

    // The same desired state again (no policy change) leaves it revoked, not "rejected".
    await rt.reconcile({ policy: { ...devPolicy, ...change }, tas: desiredTAs });
    expect(reports.get('hello')?.status).toBe('revoked');

    await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    expect(await ping()).toBe('pong');
    expect(await pingBatch()).toEqual([{ ok: true, result: 'pong' }, { ok: true, result: 'pong' }]);
    expect(reports.get('hello')).toMatchObject({ status: 'loaded', rule: null, lastError: null });
    expect(reports.get('key-vault')?.status).toBe('loaded');
  });

  it('allowRemoteLoad: false retires a TA the loadTA method put there; a null desired entry removes one', async () => {
    const remote = { ...devPolicy, allowRemoteLoad: true };
    const tas = { 'key-vault': { source: 'key-vault.tab' } };
    await rt.reconcile({ policy: remote, tas });
    expect(reports.get('hello')).toBeNull();
    await rt.loadInline('hello', bundles.bytes('hello'));
    expect(await ping()).toBe('pong');

    await rt.reconcile({ policy: devPolicy, tas });
    await expect(ping()).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { rule: 'allowRemoteLoad' } });
    expect(reports.get('hello')).toMatchObject({ status: 'revoked', origin: 'method', rule: 'allowRemoteLoad' });
    // Turning remote loading back on does not bring a method-loaded TA back by itself.
    await rt.reconcile({ policy: remote, tas });
    await expect(ping()).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });

    await rt.loadInline('hello', bundles.bytes('hello'));
    expect(await ping()).toBe('pong');
    await rt.reconcile({ policy: remote, tas }, ['hello']); // the patch had tas.hello: null
    await expect(ping()).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { rule: 'tas.hello' } });
    expect(reports.get('hello')).toMatchObject({ status: 'revoked', rule: 'tas.hello' });
    expect(events.some((e) => e.type === 'ta.revoked' && e.body.ta === 'hello' && e.body.rule === 'tas.hello')).toBe(true);
    await rt.unloadMethod('hello');
    expect(reports.get('hello')).toBeNull();

    // A desired TA whose entry is set to null is removed (IoT Hub semantics).
    await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    expect(await ping()).toBe('pong');
    await rt.reconcile({ policy: devPolicy, tas: { ...desiredTAs, hello: null } });
    expect(reports.get('hello')).toBeNull();
    await expect(ping()).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND' });
    await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    expect(await ping()).toBe('pong');
  });
});

describe('replacements and invalid policies', () => {
  it('a replacement the policy refuses leaves the running version serving, and says so', async () => {
    const s = decodeBundle(bundles.bytes('hello'));
    const foreign = await signBundle(encodeBundle({ manifest: { ...s.manifest, version: '9.9.9' }, code: s.code }), pemSigner(generateSigningKey().privateKeyPem));
    const before = events.length;
    await rt.reconcile({ policy: devPolicy, tas: { ...desiredTAs, hello: { source: `base64:${Buffer.from(foreign).toString('base64')}` } } });
    expect(await ping()).toBe('pong');
    expect(reports.get('hello')).toMatchObject({ status: 'loaded', version: '1.0.0', errorCode: 'POLICY_VIOLATION', rule: 'trustedSigners' });
    expect(events.slice(before).find((e) => e.type === 'ta.rejected')?.body).toMatchObject({ ta: 'hello', keptPrevious: true, rule: 'trustedSigners' });
    await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    expect(reports.get('hello')).toMatchObject({ status: 'loaded', lastError: null });
  });

  it('an invalid policy is refused as a whole, reported naming the field, and nothing runs until it is fixed', async () => {
    const before = events.length;
    await rt.reconcile({ policy: { ...devPolicy, maxLimits: { heapMb: 'lots' } }, tas: desiredTAs });
    expect(runtimeReported.policyError).toMatchObject({ field: 'policy.maxLimits.heapMb', inForce: expect.stringMatching(/^none/) });
    expect(runtimeReported.devSignerTrusted).toBe(false);
    expect(events.slice(before).find((e) => e.type === 'policy.rejected')?.body).toMatchObject({ field: 'policy.maxLimits.heapMb', inForce: 'none' });
    await expect(ping()).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { rule: 'policy' }, message: expect.stringContaining('policy.maxLimits.heapMb') });
    expect(reports.get('key-vault')).toMatchObject({ status: 'revoked', rule: 'policy' });
    expect(rt.allowRemoteLoad).toBe(false);

    await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    expect(runtimeReported.policyError).toBeNull();
    expect(await ping()).toBe('pong');
    expect(reports.get('key-vault')?.status).toBe('loaded');
  });
});

describe('policy.maxLimits.maxInstances', () => {
  it('caps instances of a TA (beyond it openSession answers BUSY naming the cap); lowered below a running TA\'s limits.maxInstances, it revokes that TA', async () => {
    const key = generateSigningKey();
    const hello = decodeBundle(bundles.bytes('hello')).manifest;
    const perSession = { singleInstance: false, multiSession: false, keepAlive: false };
    const bundleOf = async (name: string, uuid: string, limits: Record<string, number>) =>
      `base64:${Buffer.from(await signBundle(encodeBundle({ manifest: { ...hello, name, uuid, session: perSession, limits: { ...hello.limits, ...limits } }, code: new TextEncoder().encode(`module.exports = { commands: { ping: () => 'pong' } };`) }), pemSigner(key.privateKeyPem))).toString('base64')}`;
    const tas = {
      ...desiredTAs,
      'per-session': { source: await bundleOf('per-session', '6d1f1c2a-5b7e-4c1d-9a0b-3e2f4d5c6b71', {}) },
      'asks-two': { source: await bundleOf('asks-two', '6d1f1c2a-5b7e-4c1d-9a0b-3e2f4d5c6b72', { maxInstances: 2 }) },
    };
    const policy = (maxInstances: number) => ({ ...devPolicy, trustedSigners: { ...devPolicy.trustedSigners, test: key.signerId }, maxLimits: { maxInstances } });
    const open = (ta: string) => rt.dispatch({ id: `o${Math.random()}`, op: 'openSession', ta, deadline: deadline() });
    try {
      await rt.reconcile({ policy: policy(2), tas });
      await open('per-session');
      await open('per-session');
      await expect(open('per-session')).rejects.toMatchObject({ code: 'BUSY', message: expect.stringMatching(/operator's cap of 2 instances per TA \(maxLimits\.maxInstances\)/) });
      await open('asks-two');
      const kvLoads = loadedCount('key-vault');

      await rt.reconcile({ policy: policy(1), tas });
      // Its manifest asks for 2: refused under a cap of 1, and retired.
      expect(reports.get('asks-two')).toMatchObject({ status: 'revoked', rule: 'maxLimits.maxInstances', errorCode: 'POLICY_VIOLATION' });
      await expect(open('asks-two')).rejects.toMatchObject({ code: 'POLICY_VIOLATION', detail: { rule: 'maxLimits.maxInstances' } });
      // Names none: runs on, under the lower cap.
      expect(reports.get('per-session')?.status).toBe('loaded');
      await open('per-session');
      await expect(open('per-session')).rejects.toMatchObject({ code: 'BUSY', message: expect.stringContaining("operator's cap of 1 instances per TA") });
      // TAs with one shared instance are not restarted by it.
      expect(loadedCount('key-vault')).toBe(kvLoads);
      expect(await ping()).toBe('pong');
    } finally {
      await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    }
  });
});

describe('revocation and calls in flight', () => {
  it('a call in flight when the policy drops its signer ends by the TA\'s callTimeoutMs (TIMEOUT); new calls get 403 at once', async () => {
    const key = generateSigningKey();
    const hello = decodeBundle(bundles.bytes('hello')).manifest;
    const callTimeoutMs = 3000;
    const code = `module.exports = { commands: { ping: () => 'pong', spin: (ctx) => { ctx.log.info('spinning now'); for (;;) {} } } };`;
    const bundle = await signBundle(encodeBundle({ manifest: { ...hello, name: 'slow', uuid: '6d1f1c2a-5b7e-4c1d-9a0b-3e2f4d5c6b80', limits: { ...hello.limits, callTimeoutMs } }, code: new TextEncoder().encode(code) }), pemSigner(key.privateKeyPem));
    const tas = { ...desiredTAs, slow: { source: `base64:${Buffer.from(bundle).toString('base64')}` } };
    const withSlow = { ...devPolicy, trustedSigners: { ...devPolicy.trustedSigners, slow: key.signerId } };
    const call = (command: string) => rt.dispatch({ id: `s${Math.random()}`, op: 'invoke', ta: 'slow', command, deadline: Date.now() + 60_000 });
    try {
      await rt.reconcile({ policy: withSlow, tas });
      expect(await call('ping')).toBe('pong');
      let settled = false;
      const inFlight = call('spin').finally(() => (settled = true));
      inFlight.catch(() => undefined);
      // The TA's own log line says the command is running (a marker, not a sleep).
      await vi.waitFor(() => expect(logLines.some((l) => l.includes('spinning now'))).toBe(true), { timeout: 30_000, interval: 20 });

      await rt.reconcile({ policy: devPolicy, tas });
      await expect(call('ping')).rejects.toMatchObject({ code: 'POLICY_VIOLATION', status: 403, detail: { rule: 'trustedSigners' } });
      expect(reports.get('slow')).toMatchObject({ status: 'revoked', rule: 'trustedSigners' });
      // Revoked while the spin was still running: it is not cut short by the revocation, and
      // it does not outlive the TA's call timeout (the runtime destroys the enclave after it).
      expect(settled).toBe(false);
      await expect(inFlight).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining(`did not finish within ${callTimeoutMs} ms`) });
      await expect(call('ping')).rejects.toMatchObject({ code: 'POLICY_VIOLATION', status: 403 });
      // TAs the policy still admits were not touched.
      expect(await ping()).toBe('pong');
    } finally {
      await rt.reconcile({ policy: devPolicy, tas: desiredTAs });
    }
  }, 60_000);
});
