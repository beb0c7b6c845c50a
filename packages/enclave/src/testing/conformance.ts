/**
 * The backend conformance suite: one set of tests that every EnclaveBackend must pass.
 * Test-framework-agnostic: pass vitest's (or a compatible runner's) describe/it/expect/hooks.
 *
 *   import { describe, it, expect, beforeAll, afterAll } from 'vitest';
 *   runConformance('emulated', () => new EmulatedBackend(), { describe, it, expect, beforeAll, afterAll });
 */
import type { Value } from '@enclave-edge/ta-sdk';
import type { Enclave, EnclaveBackend, EnclaveCreateOptions, EnclaveEvent } from '../contract.js';
import { makeTestBundle, makeUnadmittedBundle, type ManifestOverrides } from './bundles.js';
import { InMemoryTrustServicesForTests } from './in-memory-trust.js';
import { KITCHEN_SINK_TA, ISOLATION_TA } from './fixtures.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface TestApi {
  describe: (name: string, fn: () => void) => void;
  it: (name: string, fn: () => Promise<void> | void, timeout?: number) => void;
  expect: any;
  beforeAll: (fn: () => Promise<void> | void, timeout?: number) => void;
  afterAll: (fn: () => Promise<void> | void, timeout?: number) => void;
}

export interface ConformanceOptions {
  /** Skip the heap-exhaustion test (slow on some backends). */
  skipOutOfMemory?: boolean;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'OK';
  } catch (err) {
    return String((err as { code?: string }).code ?? 'NO_CODE');
  }
}

export function runConformance(name: string, backendFactory: () => EnclaveBackend, t: TestApi, opts: ConformanceOptions = {}): void {
  const { describe, it, expect, beforeAll, afterAll } = t;
  const live: Enclave[] = [];
  let backend: EnclaveBackend;
  const logs: { level: string; ta: string; message: string; fields?: Record<string, unknown> }[] = [];
  const services = new InMemoryTrustServicesForTests();
  const baseOptions = (): EnclaveCreateOptions => ({
    services,
    log: (level, ta, message, fields) => logs.push({ level, ta, message, ...(fields ? { fields } : {}) }),
    hostCalls: {
      'clock.read': () => ({ ms: 1234 }),
      'secret.read': () => 'the host secret',
      'fails': () => {
        throw new Error('host call failed');
      },
    },
  });
  const create = async (code: string, m: ManifestOverrides = {}, o: EnclaveCreateOptions = {}) => {
    const e = await backend.create(makeTestBundle(code, m), { ...baseOptions(), ...o });
    live.push(e);
    return e;
  };

  describe(`EnclaveBackend conformance: ${name}`, () => {
    let sink: Enclave;
    beforeAll(async () => {
      backend = backendFactory();
      sink = await create(KITCHEN_SINK_TA, { name: 'sink', hostCalls: ['clock.read', 'fails', 'not-provided'] });
    });
    afterAll(async () => {
      await Promise.all(live.map((e) => e.destroy().catch(() => undefined)));
    });

    describe('identity and lifecycle', () => {
      it('reports its kind and binds the identity from the bundle', async () => {
        expect(typeof backend.kind).toBe('string');
        expect(sink.backend).toBe(backend.kind);
        const info = (await sink.invoke(undefined, 'info')) as any;
        expect(info.ta.name).toBe('sink');
        expect(info.ta.measurement).toBe(sink.identity.measurement);
        expect(info.ta.signerId).toBe(sink.identity.signerId);
        expect(info.created).toBe(1);
      });

      it('opens a session, keeps per-session state, closes it', async () => {
        const a = await sink.openSession({ who: 'a' });
        const b = await sink.openSession();
        expect(a).not.toBe(b);
        expect(await sink.invoke(a, 'count')).toBe(1);
        expect(await sink.invoke(a, 'count')).toBe(2);
        expect(await sink.invoke(b, 'count')).toBe(1);
        expect(((await sink.invoke(a, 'info')) as any).opened).toEqual({ who: 'a' });
        expect(sink.stats().sessions).toBeGreaterThanOrEqual(2);
        await sink.closeSession(a);
        await sink.closeSession(b);
        expect(await codeOf(sink.invoke(a, 'count'))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.closeSession(a))).toBe('ITEM_NOT_FOUND');
        expect(logs.some((l) => l.ta === 'sink' && l.message === 'session closing' && (l.fields as any)?.session === a)).toBe(true);
      });

      it('runs a session-less call in an implicit, fresh session', async () => {
        expect(await sink.invoke(undefined, 'count')).toBe(1);
        expect(await sink.invoke(undefined, 'count')).toBe(1);
      });

      it('lets onOpenSession refuse a session with its error', async () => {
        expect(await codeOf(sink.openSession({ refuse: true }))).toBe('ACCESS_DENIED');
      });

      it('singleInstance without multiSession takes one session at a time (BUSY)', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'single', session: { singleInstance: true, multiSession: false, keepAlive: true } });
        const s = await e.openSession();
        expect(await codeOf(e.openSession())).toBe('BUSY');
        await e.closeSession(s);
        // concurrent opens: exactly one wins
        const race = await Promise.allSettled([e.openSession(), e.openSession(), e.openSession()]);
        expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        await e.closeSession((race.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<string>).value);
        const s2 = await e.openSession();
        await e.closeSession(s2);
      });

      it('singleInstance shares instance state across sessions; instance-per-session does not', async () => {
        const shared = await create(KITCHEN_SINK_TA, { name: 'shared' });
        const s1 = await shared.openSession();
        const s2 = await shared.openSession();
        expect(await shared.invoke(s1, 'instanceCount')).toBe(1);
        expect(await shared.invoke(s2, 'instanceCount')).toBe(2);
        const per = await create(KITCHEN_SINK_TA, { name: 'per', session: { singleInstance: false, multiSession: true, keepAlive: false } });
        const p1 = await per.openSession();
        const p2 = await per.openSession();
        expect(await per.invoke(p1, 'instanceCount')).toBe(1);
        expect(await per.invoke(p2, 'instanceCount')).toBe(1);
        expect(await per.invoke(p1, 'instanceCount')).toBe(2);
        expect(per.stats().instances).toBe(2);
        await per.closeSession(p1);
        await per.closeSession(p2);
        expect(await per.invoke(undefined, 'instanceCount')).toBe(1);
      });

      it('keepAlive: false drops instance state when the last session closes', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'transient', session: { singleInstance: true, multiSession: true, keepAlive: false } });
        const s = await e.openSession();
        expect(await e.invoke(s, 'instanceCount')).toBe(1);
        expect(await e.invoke(s, 'instanceCount')).toBe(2);
        await e.closeSession(s);
        const s2 = await e.openSession();
        expect(await e.invoke(s2, 'instanceCount')).toBe(1);
        await e.closeSession(s2);
      });

      it('expires sessions that stay idle', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'idle' }, { sessionIdleTimeoutMs: 60 });
        const s = await e.openSession();
        expect(await e.invoke(s, 'count')).toBe(1);
        await new Promise((r) => setTimeout(r, 400));
        expect(await codeOf(e.invoke(s, 'count'))).toBe('ITEM_NOT_FOUND');
        expect(e.stats().sessions).toBe(0);
      });

      it('destroy ends the enclave; later calls fail UNAVAILABLE', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'doomed' });
        await e.destroy();
        expect(e.stats().state).toBe('destroyed');
        expect(await codeOf(e.invoke(undefined, 'echo', 1))).toBe('UNAVAILABLE');
        await e.destroy(); // idempotent
      });
    });

    describe('errors', () => {
      it('maps a thrown error to TA_ERROR with its message, no stack for release TAs', async () => {
        const err = await sink.invoke(undefined, 'throws', { message: 'the sky fell' }).catch((e: unknown) => e as any);
        expect(err.code).toBe('TA_ERROR');
        expect(err.message).toBe('the sky fell');
        expect(err.detail?.stack).toBeUndefined();
        expect((await sink.invoke(undefined, 'throwsString').catch((e: any) => e)).code).toBe('TA_ERROR');
      });

      it('passes TA error codes through but never runtime-state codes', async () => {
        expect(await codeOf(sink.invoke(undefined, 'throwsCoded', { code: 'ITEM_NOT_FOUND' }))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.invoke(undefined, 'throwsCoded', { code: 'BAD_PARAMETERS' }))).toBe('BAD_PARAMETERS');
        expect(await codeOf(sink.invoke(undefined, 'throwsCoded', { code: 'TIMEOUT' }))).toBe('TA_ERROR');
        expect(await codeOf(sink.invoke(undefined, 'throwsCoded', { code: 'BUSY' }))).toBe('TA_ERROR');
      });

      it('unknown commands are ITEM_NOT_FOUND, including inherited names', async () => {
        expect(await codeOf(sink.invoke(undefined, 'nope'))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.invoke(undefined, 'constructor'))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.invoke(undefined, '__proto__'))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.invoke(undefined, 'toString'))).toBe('ITEM_NOT_FOUND');
        expect(await codeOf(sink.invoke(undefined, ''))).toBe('BAD_PARAMETERS');
      });

      it('refuses bad bundles clearly', async () => {
        const err = (await backend.create(makeTestBundle('module.exports = { nothing: true };'), baseOptions()).catch((e: unknown) => e)) as any;
        expect(err.code).toBe('BAD_FORMAT');
        expect(err.message).toMatch(/defineTA/);
        const err2 = (await backend.create(makeTestBundle('throw new Error("load-time failure")'), baseOptions()).catch((e: unknown) => e)) as any;
        expect(err2.code).toBe('TA_ERROR');
        expect(err2.message).toMatch(/load-time failure/);
        const err3 = (await backend.create(makeTestBundle('module.exports = { commands: {} }; import("fs");'), baseOptions()).catch((e: unknown) => e)) as any;
        expect(err3.code).toBe('BAD_FORMAT');
      });

      it('runs only bundles admission let through; a debug build admitted as such shows its stack', async () => {
        const err = (await backend.create(makeUnadmittedBundle(KITCHEN_SINK_TA, { debug: true }), baseOptions()).catch((e: unknown) => e)) as any;
        expect(err.code).toBe('POLICY_VIOLATION');
        expect(err.message).toMatch(/not admitted/);
        const ok = await create(KITCHEN_SINK_TA, { name: 'dbg', debug: true });
        const thrown = (await ok.invoke(undefined, 'throws', { message: 'where?' }).catch((e: unknown) => e)) as any;
        expect(thrown.code).toBe('TA_ERROR');
        expect(typeof thrown.detail?.stack).toBe('string');
      });
    });

    describe('the boundary', () => {
      it('copies params and results: JSON values and Uint8Array round-trip', async () => {
        const v = { s: 'ü', n: 1.5, b: true, z: null, a: [1, [2, { c: 'd' }]], bin: new Uint8Array([0, 255, 7]) };
        expect(await sink.invoke(undefined, 'echo', v)).toEqual(v);
        const p = { keep: 1 } as Record<string, Value>;
        const out = (await sink.invoke(undefined, 'mutateParams', p)) as any;
        expect(out.changed).toBe(true);
        expect(p.changed).toBeUndefined();
        expect(await sink.invoke(undefined, 'returnsUndefined')).toBeNull();
      });

      it('refuses functions, symbols, cycles, non-finite numbers and class instances as BAD_PARAMETERS', async () => {
        const cyc: any = { a: 1 };
        cyc.self = cyc;
        for (const bad of [{ f: () => 1 }, { s: Symbol('x') }, cyc, { n: NaN }, { d: new Date() }, { m: new Map() }, [undefined], { big: 1n }]) {
          const err = (await sink.invoke(undefined, 'echo', bad as any).catch((e: unknown) => e)) as any;
          expect(err.code).toBe('BAD_PARAMETERS');
          expect(err.message).toMatch(/params/);
        }
      });

      it('never lets a caller change params after the call was accepted', async () => {
        const p: any = { v: 'original' };
        const call = sink.invoke(undefined, 'echo', p);
        p.v = 'changed';
        expect(await call).toEqual({ v: 'original' });
      });

      it('limits payload size both ways (PAYLOAD_TOO_LARGE)', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'small' }, { maxPayloadBytes: 4096 });
        expect(await codeOf(e.invoke(undefined, 'echo', 'x'.repeat(5000)))).toBe('PAYLOAD_TOO_LARGE');
        expect(await codeOf(e.invoke(undefined, 'echo', new Uint8Array(5000)))).toBe('PAYLOAD_TOO_LARGE');
        expect(await codeOf(e.invoke(undefined, 'returnsBig', { n: 10_000 }))).toBe('PAYLOAD_TOO_LARGE');
        expect(await e.invoke(undefined, 'returnsBig', { n: 100 })).toBe('x'.repeat(100));
      });

      it('refuses results that are not Values with TA_ERROR', async () => {
        const err = (await sink.invoke(undefined, 'returnsFunction').catch((e: unknown) => e)) as any;
        expect(err.code).toBe('TA_ERROR');
        expect(err.message).toMatch(/result/);
      });
    });

    describe('trust services, crypto and host calls', () => {
      it('seals and unseals with the enclave identity; tampering fails SEAL_INTEGRITY', async () => {
        const data = new Uint8Array([1, 2, 3, 4]);
        const blob = (await sink.invoke(undefined, 'seal', { data, policy: 'unique', context: 'ctx' })) as Uint8Array;
        expect(blob).toBeInstanceOf(Uint8Array);
        expect(await sink.invoke(undefined, 'unseal', { blob, context: 'ctx' })).toEqual(data);
        expect(await codeOf(sink.invoke(undefined, 'unseal', { blob, context: 'other' }))).toBe('SEAL_INTEGRITY');
        const bad = new Uint8Array(blob);
        bad[bad.length - 1]! ^= 1;
        expect(await codeOf(sink.invoke(undefined, 'unseal', { blob: bad, context: 'ctx' }))).toBe('SEAL_INTEGRITY');
      });

      it('gives a TA its own sealed storage and validates keys', async () => {
        await sink.invoke(undefined, 'storagePut', { key: 'k1', value: new Uint8Array([9]) });
        expect(await sink.invoke(undefined, 'storageGet', { key: 'k1' })).toEqual(new Uint8Array([9]));
        expect(await sink.invoke(undefined, 'storageList', { prefix: 'k' })).toEqual(['k1']);
        expect(await sink.invoke(undefined, 'storageDelete', { key: 'k1' })).toBe(true);
        expect(await sink.invoke(undefined, 'storageGet', { key: 'k1' })).toBeNull();
        expect(await codeOf(sink.invoke(undefined, 'storagePut', { key: '../etc/passwd', value: new Uint8Array(1) }))).toBe('BAD_PARAMETERS');
      });

      it('attests with the backend kind as tee, the caller nonce and custom claims', async () => {
        const ev = JSON.parse((await sink.invoke(undefined, 'attest', { nonce: '00112233445566778899', claims: { purpose: 'test' } })) as string);
        expect(ev.tee).toBe(backend.kind);
        expect(ev.unique_id).toBe(sink.identity.measurement);
        expect(ev.claims).toEqual({ purpose: 'test' });
        expect(await codeOf(sink.invoke(undefined, 'attest', { nonce: 'ab' }))).toBe('BAD_PARAMETERS');
      });

      it('fails trust services with NOT_SUPPORTED when the runtime gave none', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'bare' }, { services: undefined });
        expect(await codeOf(e.invoke(undefined, 'seal', { data: new Uint8Array(1) }))).toBe('NOT_SUPPORTED');
      });

      it('provides randomness and ES256 crypto inside the enclave', async () => {
        const r1 = (await sink.invoke(undefined, 'random', { n: 32 })) as Uint8Array;
        const r2 = (await sink.invoke(undefined, 'random', { n: 32 })) as Uint8Array;
        expect(r1.length).toBe(32);
        expect(r1).not.toEqual(r2);
        expect(await codeOf(sink.invoke(undefined, 'random', { n: -1 }))).toBe('BAD_PARAMETERS');
        const c = (await sink.invoke(undefined, 'crypto')) as any;
        expect(Buffer.from(c.sha).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
        expect(c.hmac.length).toBe(32);
        expect(c.sigLen).toBe(64);
        expect(c.ok).toBe(true);
        expect(c.bad).toBe(false);
        expect(c.jwk.kty).toBe('EC');
        expect(c.jwk.d).toBeUndefined();
      });

      it('dispatches only host calls both the manifest and the runtime allow', async () => {
        expect(await sink.invoke(undefined, 'host', { name: 'clock.read' })).toEqual({ ms: 1234 });
        // provided by the runtime but not in this TA's manifest
        expect(await sink.invoke(undefined, 'hostCaught', { name: 'secret.read' })).toMatch(/^ACCESS_DENIED/);
        // in the manifest but not provided by the runtime
        expect(await sink.invoke(undefined, 'hostCaught', { name: 'not-provided' })).toMatch(/^ACCESS_DENIED/);
        expect(await codeOf(sink.invoke(undefined, 'host', { name: 'secret.read' }))).toBe('ACCESS_DENIED');
        expect(await codeOf(sink.invoke(undefined, 'host', { name: 'fails' }))).not.toBe('OK');
        // and the enclave keeps serving
        expect(await sink.invoke(undefined, 'echo', 'still here')).toBe('still here');
      });

      it('routes TA logs (and console) to the runtime logger tagged with the TA name', async () => {
        await sink.invoke(undefined, 'log', { level: 'warn', message: 'hello from the TA', fields: { n: 1 } });
        await new Promise((r) => setTimeout(r, 20));
        expect(logs).toContainEqual({ level: 'warn', ta: 'sink', message: 'hello from the TA', fields: { n: 1 } });
        expect(logs.some((l) => l.ta === 'sink' && l.level === 'info' && l.message === 'via console 42')).toBe(true);
      });

      it('gives untrusted time through ctx.untrustedTime only', async () => {
        const now = Date.now();
        const t = (await sink.invoke(undefined, 'time')) as number;
        expect(Math.abs(t - now)).toBeLessThan(60_000);
      });
    });

    describe('isolation', () => {
      let iso: Enclave;
      beforeAll(async () => {
        iso = await create(ISOLATION_TA, { name: 'iso' });
      });
      const probe = async (cmd: string) => (await iso.invoke(undefined, cmd)) as { reached: boolean; value?: string; error?: string };

      it('has no ambient authority in its globals', async () => {
        const g = (await iso.invoke(undefined, 'globals')) as Record<string, string>;
        for (const [k, v] of Object.entries(g)) expect(`${k}: ${v}`).toBe(`${k}: undefined`);
      });

      it('cannot reach process or require through Function or globalThis', async () => {
        expect(await probe('ambientViaFunction')).toMatchObject({ reached: true, value: 'undefined/undefined' });
        const g = await probe('globalThisViaFunction');
        expect(g.value === 'undefined' || g.reached === false).toBe(true);
      });

      for (const cmd of ['ctxConstructorEscape', 'methodConstructorEscape', 'asyncConstructorEscape', 'generatorConstructorEscape', 'asyncGeneratorConstructorEscape', 'promiseThenEscape', 'errorConstructorEscape', 'dynamicImport', 'evalProcess']) {
        it(`constructor / import escape fails: ${cmd}`, async () => {
          const r = await probe(cmd);
          expect(r.reached).toBe(false);
        });
      }

      for (const cmd of ['protoPollution', 'objectPrototypeReplace', 'arrayPrototypePatch', 'promisePrototypePatch', 'jsonPatch', 'ctxMutation', 'ctxTaMutation', 'ctxProtoSwap']) {
        it(`cannot tamper with shared intrinsics or its context: ${cmd}`, async () => {
          const r = await probe(cmd);
          expect(r.reached).toBe(false);
        });
      }

      it('tampering attempts leave nothing behind', async () => {
        expect(await iso.invoke(undefined, 'pollutedCheck')).toEqual({ polluted: null, toString: '[object Array]' });
        expect((await iso.invoke(undefined, 'ctxKeys')) as string[]).toEqual(['attest', 'caller', 'crypto', 'host', 'log', 'random', 'seal', 'session', 'storage', 'ta', 'unseal', 'untrustedTime']);
      });

      it('has no clock or randomness but the context (Date.now, new Date(), Math.random throw)', async () => {
        for (const cmd of ['dateNow', 'newDate', 'mathRandom']) expect((await probe(cmd)).reached).toBe(false);
      });

      it('cannot walk callers or capture host stack frames', async () => {
        expect((await probe('callerWalk')).value ?? 'threw').not.toMatch(/function/);
        const p = await probe('prepareStackTrace');
        expect(p.value).not.toBe('callsites');
        const stack = (await iso.invoke(undefined, 'stackContents')) as string;
        expect(stack).not.toMatch(/file:\/\/|node:internal|\/work\//);
      });

      it('cannot see another TA’s globals', async () => {
        const other = await create(KITCHEN_SINK_TA, { name: 'other' });
        expect(await sink.invoke(undefined, 'setGlobal', { value: 'sink-secret' })).toBe(true);
        expect(await sink.invoke(undefined, 'getGlobal')).toBe('sink-secret');
        expect(await other.invoke(undefined, 'getGlobal')).toBeNull();
      });
    });

    describe('limits', () => {
      it('times out a runaway call (TIMEOUT), restarts, and other enclaves keep serving', async () => {
        const events: EnclaveEvent[] = [];
        const runaway = await create(KITCHEN_SINK_TA, { name: 'runaway', limits: { callTimeoutMs: 300 } });
        runaway.on('event', (e) => events.push(e));
        let served = 0;
        let stop = false;
        const traffic = (async () => {
          while (!stop) {
            expect(await sink.invoke(undefined, 'echo', served)).toBe(served);
            served++;
          }
        })();
        const before = served;
        const err = (await runaway.invoke(undefined, 'spin').catch((e: unknown) => e)) as any;
        const during = served - before;
        stop = true;
        await traffic;
        expect(err.code).toBe('TIMEOUT');
        expect(during).toBeGreaterThan(5);
        expect(await runaway.invoke(undefined, 'echo', 'back')).toBe('back');
        expect(events.map((e) => e.type)).toEqual(['crashed', 'restarted']);
        expect(runaway.stats().restarts).toBe(1);
      });

      it('times out a call that never settles, and honours a shorter per-call deadline', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'hanger', limits: { callTimeoutMs: 2000 } });
        const t0 = Date.now();
        expect(await codeOf(e.invoke(undefined, 'hang', null, { timeoutMs: 100 }))).toBe('TIMEOUT');
        expect(Date.now() - t0).toBeLessThan(1500);
        expect(await e.invoke(undefined, 'echo', 1)).toBe(1);
      });

      it('ends a session whose instance was restarted with TA_CRASHED', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'crashy', limits: { callTimeoutMs: 200 } });
        const s = await e.openSession();
        expect(await codeOf(e.invoke(s, 'spin'))).toBe('TIMEOUT');
        expect(await codeOf(e.invoke(s, 'count'))).toBe('TA_CRASHED');
        await e.closeSession(s);
        const s2 = await e.openSession();
        expect(await e.invoke(s2, 'count')).toBe(1);
      });

      it('runs at most maxConcurrency calls, queues a bounded number, then BUSY', async () => {
        const e = await create(KITCHEN_SINK_TA, { name: 'narrow', limits: { maxConcurrency: 1, callTimeoutMs: 400 } }, { queueLimit: 2 });
        const first = e.invoke(undefined, 'hang');
        await new Promise((r) => setTimeout(r, 20));
        const queued = [e.invoke(undefined, 'echo', 1), e.invoke(undefined, 'echo', 2)];
        for (const q of queued) q.catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
        expect(e.stats()).toMatchObject({ inFlight: 1, queued: 2 });
        expect(await codeOf(e.invoke(undefined, 'echo', 3))).toBe('BUSY');
        expect(await codeOf(first)).toBe('TIMEOUT');
        // queued session-less calls never reached the TA: they run on the restarted instance
        expect(await Promise.all(queued)).toEqual([1, 2]);
        expect(await e.invoke(undefined, 'echo', 4)).toBe(4);
      });

      it('turns deep recursion into an error, not a crash', async () => {
        const err = (await sink.invoke(undefined, 'recurse').catch((e: unknown) => e)) as any;
        expect(err.code).toBe('TA_ERROR');
        expect(err.message).toMatch(/call stack/i);
        expect(await sink.invoke(undefined, 'echo', 'fine')).toBe('fine');
      });

      if (!opts.skipOutOfMemory) {
        it('reports heap exhaustion as OUT_OF_MEMORY and restarts the instance', async () => {
          const e = await create(KITCHEN_SINK_TA, { name: 'hungry', limits: { heapMb: 32, callTimeoutMs: 20_000 } });
          expect(await codeOf(e.invoke(undefined, 'allocate'))).toBe('OUT_OF_MEMORY');
          expect(await e.invoke(undefined, 'echo', 'alive')).toBe('alive');
        }, 60_000);
      }
    });
  });
}
