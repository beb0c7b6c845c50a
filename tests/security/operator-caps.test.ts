/**
 * O10 (fixed, security: H5 for ta-runtime policy/protocol): a trusted signer's manifest could
 * ask for heapMb 4096, maxConcurrency 256, callTimeoutMs 1 h and the runtime granted it. Now
 * policy.maxLimits caps each limit (defaults 256 MB, 8 MB stack, 16, 60 s); a bundle over a cap
 * is rejected with POLICY_VIOLATION naming the limit, and the rejection is in the TA's report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { DEFAULT_MAX_LIMITS, runtimePolicySchema } from '@enclave-edge/protocol';
import { createLogger } from '@enclave-edge/observability';
import { newSigner, signedBundle, type TestSigner } from './bundles.js';

let signer: TestSigner;
let rt: TARuntime;
const reports = new Map<string, any>();
const src = (b: Uint8Array) => ({ source: 'base64:' + Buffer.from(b).toString('base64') });
const limits = (over: Record<string, number>) => ({ heapMb: 32, stackKb: 1024, maxConcurrency: 2, callTimeoutMs: 5_000, ...over });

beforeAll(() => {
  signer = newSigner();
  const log = createLogger({ name: 'sec', level: 'fatal', destination: { write: () => undefined } });
  rt = new TARuntime({ backend: new EmulatedBackend(), log, sources: { bundleDir: '/nonexistent' }, drainMs: 200, events: { event() {}, report: (n, r) => reports.set(n, r) } });
});
afterAll(() => rt.stop());

describe('operator caps on manifest limits (policy.maxLimits)', () => {
  it('has safe defaults', () => {
    expect(runtimePolicySchema.parse({}).maxLimits).toEqual({ heapMb: 256, stackKb: 8192, maxConcurrency: 16, callTimeoutMs: 60_000, maxInstances: 16 });
    expect(DEFAULT_MAX_LIMITS.heapMb).toBe(256);
  });

  it.each([
    ['heapMb', 4096],
    ['maxConcurrency', 256],
    ['callTimeoutMs', 3_600_000],
    ['stackKb', 65_536],
  ] as const)('a validly signed bundle asking for %s %i is rejected by default, naming the limit', async (key, value) => {
    const name = `greedy-${key.toLowerCase()}`;
    const bundle = await signedBundle(signer, undefined, { name, limits: limits({ [key]: value }) as never });
    await rt.reconcile({ policy: { trustedSigners: { mine: signer.signerId }, allowEmulated: true }, tas: { [name]: src(bundle) } });
    expect(reports.get(name)).toMatchObject({ status: 'rejected', errorCode: 'POLICY_VIOLATION' });
    expect(reports.get(name).lastError).toContain(`limits.${key} ${value}, above the operator cap policy.maxLimits.${key}`);
    expect(rt.list().find((t) => t.name === name)?.status).toBe('rejected');
  });

  it('within the caps it loads; an operator may raise a cap per device', async () => {
    const ok = await signedBundle(signer, undefined, { name: 'modest' });
    const big = await signedBundle(signer, undefined, { name: 'big', limits: limits({ heapMb: 512 }) as never });
    const policy = { trustedSigners: { mine: signer.signerId }, allowEmulated: true };
    await rt.reconcile({ policy, tas: { modest: src(ok), big: src(big) } });
    expect(reports.get('modest')).toMatchObject({ status: 'loaded' });
    expect(reports.get('big')).toMatchObject({ status: 'rejected', errorCode: 'POLICY_VIOLATION' });
    await rt.reconcile({ policy: { ...policy, maxLimits: { heapMb: 1024 } }, tas: { modest: src(ok), big: src(big) } });
    expect(reports.get('big')).toMatchObject({ status: 'loaded' });
  });

  it('a malformed cap is refused as an invalid policy', () => {
    expect(runtimePolicySchema.safeParse({ maxLimits: { heapMb: -1 } }).success).toBe(false);
    expect(runtimePolicySchema.safeParse({ maxLimits: { heapMb: 1.5 } }).success).toBe(false);
  });
});
