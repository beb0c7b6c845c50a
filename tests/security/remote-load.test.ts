/**
 * O5 (fixed, security: H5 for ta-runtime methods): loadTA/unloadTA change the TA set and any
 * module could call them (module-to-module methods carry no caller identity). They are now
 * refused with ACCESS_DENIED unless the operator sets policy.allowRemoteLoad; listTAs and
 * getEvidence stay available.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime, handleRuntimeMethod } from '@enclave-edge/ta-runtime';
import { createLogger } from '@enclave-edge/observability';
import { newSigner, signedBundle, type TestSigner } from './bundles.js';

let signer: TestSigner;
let rt: TARuntime;
let bundleB64: string;
const reports: Array<Record<string, unknown>> = [];

const policy = (allowRemoteLoad?: boolean) => ({ trustedSigners: { mine: signer.signerId }, allowEmulated: true, ...(allowRemoteLoad === undefined ? {} : { allowRemoteLoad }) });

beforeAll(async () => {
  signer = newSigner();
  const log = createLogger({ name: 'sec', level: 'fatal', destination: { write: () => undefined } });
  rt = new TARuntime({ backend: new EmulatedBackend(), log, sources: { bundleDir: '/nonexistent' }, drainMs: 200, events: { event() {}, report() {}, runtimeReport: (p) => reports.push(p) } });
  bundleB64 = Buffer.from(await signedBundle(signer, undefined, { name: 'injected' })).toString('base64');
});
afterAll(() => rt.stop());

describe('loadTA / unloadTA behind policy.allowRemoteLoad', () => {
  it('by default a validly signed bundle is refused with ACCESS_DENIED (403) and nothing is loaded', async () => {
    await rt.reconcile({ policy: policy(), tas: {} });
    expect(rt.allowRemoteLoad).toBe(false);
    const load = await handleRuntimeMethod('loadTA', { name: 'injected', bundle: bundleB64 }, rt);
    expect(load).toMatchObject({ status: 403, payload: { error: { code: 'ACCESS_DENIED', message: expect.stringMatching(/policy\.allowRemoteLoad/) } } });
    expect(rt.list().map((t) => t.name)).not.toContain('injected');
    const unload = await handleRuntimeMethod('unloadTA', { name: 'injected' }, rt);
    expect(unload).toMatchObject({ status: 403, payload: { error: { code: 'ACCESS_DENIED' } } });
  });

  it('listTAs and getEvidence are not affected by the switch', async () => {
    expect((await handleRuntimeMethod('listTAs', {}, rt)).status).toBe(200);
    const ev = await handleRuntimeMethod('getEvidence', { ta: 'nope', nonce: 'ab'.repeat(16) }, rt);
    expect((ev.payload as { error: { code: string } }).error.code).not.toBe('ACCESS_DENIED');
  });

  it('with allowRemoteLoad: true the operator can load and unload, and the switch is reported', async () => {
    await rt.reconcile({ policy: policy(true), tas: {} });
    expect(reports.at(-1)).toMatchObject({ allowRemoteLoad: true });
    const load = await handleRuntimeMethod('loadTA', { name: 'injected', bundle: bundleB64 }, rt);
    expect(load.status, JSON.stringify(load.payload)).toBe(200);
    expect(rt.list().find((t) => t.name === 'injected')).toMatchObject({ status: 'loaded', origin: 'method' });
    expect((await handleRuntimeMethod('unloadTA', { name: 'injected' }, rt)).status).toBe(200);
  });

  it('even when allowed, loadTA refuses a bundle aliasing a loaded TA (same signer, productId, uuid: it would share its sealed storage)', async () => {
    const uuid = '0d7c3f2a-5b1e-4c8d-9a6f-2e4b8c1d3f5a';
    const vault = await signedBundle(signer, undefined, { name: 'vault', uuid, productId: 7 });
    await rt.reconcile({ policy: policy(true), tas: { vault: { source: 'base64:' + Buffer.from(vault).toString('base64') } } });
    expect(rt.list().find((t) => t.name === 'vault')).toMatchObject({ status: 'loaded' });
    const alias = Buffer.from(await signedBundle(signer, undefined, { name: 'reader', uuid, productId: 7 })).toString('base64');
    const r = await handleRuntimeMethod('loadTA', { name: 'reader', bundle: alias }, rt);
    expect(r).toMatchObject({ status: 409, payload: { error: { code: 'CONFLICT', message: expect.stringMatching(/TA "vault"/) } } });
    expect(rt.list().find((t) => t.name === 'reader')?.status).toBe('rejected');
    const distinct = Buffer.from(await signedBundle(signer, undefined, { name: 'reader', productId: 7 })).toString('base64');
    expect((await handleRuntimeMethod('loadTA', { name: 'reader', bundle: distinct }, rt)).status).toBe(200);
    await handleRuntimeMethod('unloadTA', { name: 'reader' }, rt);
  });

  it('turning the switch off again refuses further changes', async () => {
    await rt.reconcile({ policy: policy(false), tas: {} });
    expect((await handleRuntimeMethod('loadTA', { name: 'injected', bundle: bundleB64 }, rt)).status).toBe(403);
  });
});
