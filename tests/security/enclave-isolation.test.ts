/**
 * The emulated enclave against a hostile TA: what the compartment can reach, whose identity its
 * seal/storage/attest use, which host calls it gets, and which errors it can forge. Real workers,
 * real SES, real trust services (software root) and the real evidence verifier.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';
import { makeTestBundle } from '@enclave-edge/enclave/testing';
import { createRootOfTrust, createTrustServices, devicePaths, type TrustServicesImpl } from '@enclave-edge/trust';
import { verifyEvidence } from '@enclave-edge/attestation';
import { tempDir } from './helpers.js';

const HOSTILE_TA = String.raw`
'use strict';
const probe = (f) => { try { return f(); } catch (e) { return 'threw'; } };
module.exports = { commands: {
  reach: () => ({
    process: typeof globalThis.process,
    require: typeof globalThis.require,
    module: typeof globalThis.module,
    sab: typeof globalThis.SharedArrayBuffer,
    atomics: typeof globalThis.Atomics,
    wasm: typeof globalThis.WebAssembly,
    timers: typeof globalThis.setTimeout + typeof globalThis.setImmediate + typeof globalThis.queueMicrotask,
    net: typeof globalThis.fetch + typeof globalThis.XMLHttpRequest + typeof globalThis.WebSocket,
    buffer: typeof globalThis.Buffer,
    fnProcess: probe(() => Function('return typeof process')()),
    indirectEval: probe(() => (0, eval)('typeof require')),
    ctorChain: probe(() => (async () => {}).constructor('return 1') && 'async ctor usable'),
    mathRandom: probe(() => typeof Math.random()),
    frozenProto: Object.isFrozen(Object.prototype) && Object.isFrozen(Array.prototype) && Object.isFrozen(Function.prototype),
  }),
  ctxShape: (ctx) => ({
    frozen: Object.isFrozen(ctx) && Object.isFrozen(ctx.storage) && Object.isFrozen(ctx.ta) && Object.isFrozen(ctx.host),
    ctorEscape: probe(() => ctx.seal.constructor('return typeof process')()),
    randomEscape: probe(() => ctx.random(1).constructor.constructor('return typeof process')()),
    keys: Object.keys(ctx).sort().join(','),
  }),
  setGlobal: (ctx, p) => { globalThis.leak = p; return Object.isFrozen(globalThis); },
  getGlobal: () => globalThis.leak === undefined ? null : globalThis.leak,
  async attest(ctx, p) { return ctx.attest({ nonce: p.nonce, claims: p.claims }); },
  async seal(ctx, p) { return ctx.seal(p.data, { policy: p.policy }); },
  async unseal(ctx, p) { return ctx.unseal(p.blob); },
  async put(ctx, p) { await ctx.storage.put(p.key, p.value); return true; },
  async get(ctx, p) { return (await ctx.storage.get(p.key)) ?? null; },
  async host(ctx, p) { try { return await ctx.host.call(p.name, p.args); } catch (e) { return 'denied: ' + e.code; } },
  forge: (ctx, p) => { const e = new Error('forged'); e.code = p.code; throw e; },
  mutate: (ctx, p) => { p.changed = true; p.list.push(9); return p; },
}};`;

let t: ReturnType<typeof tempDir>;
let services: TrustServicesImpl;
const live: EmulatedEnclave[] = [];
const hostCalled: string[] = [];
const backend = new EmulatedBackend();

async function create(o: Parameters<typeof makeTestBundle>[1] = {}, hostCalls: Record<string, () => unknown> = {}): Promise<EmulatedEnclave> {
  const e = await backend.create(makeTestBundle(HOSTILE_TA, o), { services, hostCalls: hostCalls as never });
  live.push(e);
  return e;
}

beforeAll(async () => {
  t = tempDir();
  services = createTrustServices({ rootOfTrust: await createRootOfTrust({ kind: 'software', stateDir: t.dir }) });
});
afterAll(async () => {
  await Promise.all(live.map((e) => e.destroy()));
  await services.close();
  t.cleanup();
});

describe('the compartment grants no ambient authority', () => {
  it('no process, require, shared memory, Wasm, timers, network or Buffer; eval and Function stay confined', async () => {
    const e = await create();
    expect(await e.invoke(undefined, 'reach')).toEqual({
      process: 'undefined', require: 'undefined', module: 'undefined', sab: 'undefined', atomics: 'undefined', wasm: 'undefined',
      timers: 'undefinedundefinedundefined', net: 'undefinedundefinedundefined', buffer: 'undefined',
      fnProcess: 'undefined', indirectEval: 'undefined', ctorChain: 'threw', mathRandom: 'threw', frozenProto: true,
    });
  });

  it('the context is frozen and its functions do not lead out of the compartment', async () => {
    const e = await create();
    expect(await e.invoke(undefined, 'ctxShape')).toEqual({
      frozen: true, ctorEscape: 'threw', randomEscape: 'threw',
      // caller: how this call came (ctx.caller.confidential); data only, frozen with the rest.
      keys: 'attest,caller,crypto,host,log,random,seal,session,storage,ta,unseal,untrustedTime',
    });
  });

  it('two TAs share nothing: a global set by one is invisible to the other', async () => {
    const a = await create({ name: 'ta-a' });
    const b = await create({ name: 'ta-b' });
    await a.invoke(undefined, 'setGlobal', 'secret-of-a');
    expect(await b.invoke(undefined, 'getGlobal')).toBeNull();
  });

  it('a TA mutating its params does not change the caller object (copy at the boundary)', async () => {
    const e = await create();
    const params = { list: [1] };
    const r = await e.invoke(undefined, 'mutate', params);
    expect(r).toEqual({ list: [1, 9], changed: true });
    expect(params).toEqual({ list: [1] });
  });
});

describe('identity: the TA never chooses whose keys, storage or evidence it gets', () => {
  it('evidence carries the enclave identity and tee "emulated"; TA claims cannot override top-level claims', async () => {
    const e = await create({ name: 'attester' });
    const nonce = randomBytes(16).toString('hex');
    const token = (await e.invoke(undefined, 'attest', {
      nonce,
      claims: { unique_id: 'f'.repeat(64), signer_id: 'f'.repeat(64), tee: 'sgx', dbgstat: 1, rot: 'pkcs11', security_version: 99 },
    })) as string;
    const ca = readFileSync(devicePaths(t.dir).ca, 'utf8');
    const v = await verifyEvidence(token, { trustAnchors: ca, nonce, policy: { allowEmulated: true } });
    expect(v.accepted).toBe(true);
    if (!v.accepted) return;
    expect(v.claims.unique_id).toBe(e.identity.measurement);
    expect(v.claims.signer_id).toBe(e.identity.signerId);
    expect(v.claims.tee).toBe('emulated');
    expect(v.claims.rot).toBe('software');
    expect(v.claims.security_version).toBe(1);
    expect(v.claims.claims).toMatchObject({ tee: 'sgx', unique_id: 'f'.repeat(64) }); // nested, clearly the TA's own
    // a strict verifier refuses it: emulated is not hardware isolation
    expect(await verifyEvidence(token, { trustAnchors: ca, nonce })).toMatchObject({ accepted: false, reason: 'emulated' });
  });

  it('a blob sealed by one TA does not open in a TA of another signer/product; storage is per TA', async () => {
    const a = await create({ name: 'owner', productId: 1 });
    const b = await create({ name: 'thief', productId: 2 });
    const blob = (await a.invoke(undefined, 'seal', { data: new TextEncoder().encode('k'), policy: 'product' })) as Uint8Array;
    await expect(b.invoke(undefined, 'unseal', { blob })).rejects.toMatchObject({ code: 'SEAL_INTEGRITY' });
    await a.invoke(undefined, 'put', { key: 'cfg', value: new Uint8Array([1, 2, 3]) });
    expect(await b.invoke(undefined, 'get', { key: 'cfg' })).toBeNull();
  });

  it('storage keys with path tricks are refused inside the enclave', async () => {
    const e = await create();
    for (const key of ['../x', '/etc/passwd', 'a/b', '']) {
      await expect(e.invoke(undefined, 'put', { key, value: new Uint8Array(1) })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    }
  });
});

describe('host calls: only names both in the manifest and in the runtime', () => {
  it('denies names the manifest does not list, names the runtime lacks, and prototype names', async () => {
    const handlers = {
      allowed: () => (hostCalled.push('allowed'), 'ok'),
      unlisted: () => (hostCalled.push('unlisted'), 'should not run'),
    };
    const e = await create({ hostCalls: ['allowed', 'missing'] }, handlers);
    expect(await e.invoke(undefined, 'host', { name: 'allowed' })).toBe('ok');
    expect(await e.invoke(undefined, 'host', { name: 'unlisted' })).toBe('denied: ACCESS_DENIED');
    expect(await e.invoke(undefined, 'host', { name: 'missing' })).toBe('denied: ACCESS_DENIED');
    for (const name of ['__proto__', 'constructor', 'hasOwnProperty', 'toString']) {
      expect(await e.invoke(undefined, 'host', { name })).toBe('denied: ACCESS_DENIED');
    }
    expect(hostCalled).toEqual(['allowed']);
  });
});

describe('errors a TA may not forge', () => {
  it('runtime-state codes thrown by a TA arrive as TA_ERROR', async () => {
    const e = await create();
    for (const code of ['TIMEOUT', 'BUSY', 'TA_CRASHED', 'OUT_OF_MEMORY', 'INTERNAL', 'POLICY_VIOLATION', 'ATTESTATION_INVALID']) {
      await expect(e.invoke(undefined, 'forge', { code })).rejects.toMatchObject({ code: 'TA_ERROR' });
    }
    await expect(e.invoke(undefined, 'forge', { code: 'BAD_PARAMETERS' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
