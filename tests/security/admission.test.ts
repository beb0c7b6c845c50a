/**
 * Admission (@enclave-edge/bundle admit(), the one owner every layer calls): nothing is run unless
 * the bundle verifies under the policy, each refusal names its rule, and bundle sources cannot be
 * turned into a read-anything or hang-forever primitive.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { readSource, MAX_BUNDLE_BYTES } from '@enclave-edge/ta-runtime';
import { admit as admitBundle, admitVerified, admittedOrThrow, decodeBundle, encodeBundle, TAB_HEADER_LENGTH } from '@enclave-edge/bundle';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { runtimePolicySchema } from '@enclave-edge/protocol';
import { newSigner, signedBundle, type TestSigner } from './bundles.js';
import { tempDir } from './helpers.js';

let trusted: TestSigner;
let attacker: TestSigner;
let good: Uint8Array;
const policy = (over: Record<string, unknown> = {}) => runtimePolicySchema.parse({ trustedSigners: { dev: trusted.signerId }, allowEmulated: true, ...over });
const admit = async (bytes: Uint8Array, over: Record<string, unknown> = {}, pinnedMeasurement?: string, backendKind = 'emulated') =>
  admittedOrThrow(await admitBundle(bytes, policy(over), { name: 'probe', backendKind, origin: 'desired', pinnedMeasurement }));
/** The refusal (code, rule, message) admit() answers, without throwing. */
const refusalOf = async (bytes: Uint8Array, over: Record<string, unknown> = {}, origin: 'desired' | 'method' = 'desired') =>
  (await admitBundle(bytes, policy(over), { name: 'probe', backendKind: 'emulated', origin })).refused;

beforeAll(async () => {
  trusted = newSigner();
  attacker = newSigner();
  good = await signedBundle(trusted);
});

describe('admission policy', () => {
  it('admits a bundle of a trusted signer', async () => {
    expect((await admit(good)).signerId).toBe(trusted.signerId);
  });

  it('refuses everything when no signer is trusted (fail closed)', async () => {
    await expect(admit(good, { trustedSigners: {} })).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION' }));
  });

  it('refuses a validly signed bundle of an untrusted signer', async () => {
    await expect(admit(new Uint8Array(0))).rejects.toThrow(expect.objectContaining({ code: 'BAD_FORMAT' }));
    const evil = await signedBundle(attacker);
    await expect(admit(evil)).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/not one of the trusted signers/) }));
  });

  it('refuses an unsigned bundle', async () => {
    const s = decodeBundle(good);
    const unsigned = encodeBundle({ manifest: s.manifest, code: s.code });
    await expect(admit(unsigned)).rejects.toThrow(expect.objectContaining({ code: 'SIGNATURE_INVALID' }));
  });

  it('refuses code or manifest changed after signing (e.g. a host call added)', async () => {
    const s = decodeBundle(good);
    const code = new TextEncoder().encode("module.exports = { commands: { echo: () => 'pwned' } };");
    const swappedCode = encodeBundle({ manifest: s.manifest, code, signature: s.signature! });
    await expect(admit(swappedCode)).rejects.toThrow(expect.objectContaining({ code: expect.stringMatching(/MEASUREMENT_MISMATCH|SIGNATURE_INVALID/) }));
    const widened = encodeBundle({ manifest: { ...s.manifest, hostCalls: ['exec'] }, code: s.code, signature: s.signature! });
    await expect(admit(widened)).rejects.toThrow(expect.objectContaining({ code: expect.stringMatching(/MEASUREMENT_MISMATCH|SIGNATURE_INVALID/) }));
    // one flipped byte in the code section
    const flipped = new Uint8Array(good);
    flipped[TAB_HEADER_LENGTH + s.manifestBytes.length + 3]! ^= 1;
    await expect(admit(flipped)).rejects.toThrow(expect.objectContaining({ code: expect.stringMatching(/MEASUREMENT_MISMATCH|SIGNATURE_INVALID/) }));
  });

  it('refuses a re-signed bundle (attacker key) even with the trusted signer listed elsewhere', async () => {
    const s = decodeBundle(good);
    const resigned = await signedBundle(attacker, new TextDecoder().decode(s.code), { uuid: s.manifest.uuid });
    await expect(admit(resigned)).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION' }));
  });

  it('enforces the pinned measurement, minimum SVN, debug and emulation policy', async () => {
    const m = (await admit(good)).measurement;
    await expect(admit(good, {}, m.replace(/^./, m[0] === '0' ? '1' : '0'))).rejects.toThrow(expect.objectContaining({ code: 'MEASUREMENT_MISMATCH' }));
    expect((await admit(good, {}, m.toUpperCase())).measurement).toBe(m);
    await expect(admit(good, { minSvn: { probe: 2 } })).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/securityVersion 1 is below/) }));
    const dbg = await signedBundle(trusted, undefined, { debug: true });
    await expect(admit(dbg)).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/debug/) }));
    expect((await admit(dbg, { allowDebug: true })).manifest.debug).toBe(true);
    await expect(admit(good, { allowEmulated: false })).rejects.toThrow(expect.objectContaining({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/emulated/) }));
  });

  it('refuses a bundle configured under another TA name', async () => {
    const other = await signedBundle(trusted, undefined, { name: 'other' });
    await expect(admit(other)).rejects.toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('names the rule of each refusal, for the runtime to report', async () => {
    expect(await refusalOf(good)).toBeUndefined();
    expect(await refusalOf(good, { trustedSigners: {} })).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'trustedSigners' });
    expect(await refusalOf(good, { trustedSigners: { x: attacker.signerId } })).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'trustedSigners' });
    expect(await refusalOf(good, { minSvn: { probe: 5 } })).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'minSvn.probe' });
    expect(await refusalOf(good, { allowEmulated: false })).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'allowEmulated' });
    expect(await refusalOf(good, { maxLimits: { heapMb: 8 } })).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'maxLimits.heapMb', message: expect.stringMatching(/above the operator cap policy\.maxLimits\.heapMb 8$/) });
    expect(await refusalOf(good, {}, 'method')).toMatchObject({ code: 'POLICY_VIOLATION', rule: 'allowRemoteLoad' });
    expect(await refusalOf(good, { allowRemoteLoad: true }, 'method')).toBeUndefined();
    expect(await refusalOf(new Uint8Array(3))).toMatchObject({ code: 'BAD_FORMAT', rule: 'signature' });
  });

  it('re-admits an already verified bundle under a new policy without reading it again', async () => {
    const verified = await admit(good);
    const ctx = { name: 'probe', backendKind: 'emulated', origin: 'desired' } as const;
    expect(admitVerified(verified, policy(), ctx).admitted).toBe(verified);
    expect(admitVerified(verified, policy({ trustedSigners: { other: attacker.signerId } }), ctx).refused).toMatchObject({ rule: 'trustedSigners' });
  });

  it('the enclave backend runs only what admission let through', async () => {
    const backend = new EmulatedBackend({ standby: 0 });
    try {
      const verified = await admit(good);
      const copy = { ...verified }; // same fields, never admitted
      await expect(backend.create(copy)).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/not admitted/) });
      const e = await backend.create(verified);
      await e.destroy();
    } finally {
      await backend.destroy();
    }
  });
});

describe('bundle sources', () => {
  let t: ReturnType<typeof tempDir>;
  beforeAll(() => {
    t = tempDir();
    mkdirSync(join(t.dir, 'tas'));
    writeFileSync(join(t.dir, 'tas', 'ok.tab'), good);
    writeFileSync(join(t.dir, 'outside.tab'), good);
  });
  afterAll(() => t.cleanup());
  const opts = () => ({ bundleDir: join(t.dir, 'tas') });

  it('reads a file name from the bundle directory', async () => {
    expect((await readSource('ok.tab', opts())).length).toBe(good.length);
  });

  it('refuses relative paths that leave the bundle directory', async () => {
    for (const s of ['../outside.tab', 'sub/../../outside.tab', '..', '.', 'a/b.tab']) {
      await expect(readSource(s, opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    }
  });

  it('refuses plain http', async () => {
    await expect(readSource('http://127.0.0.1:1/x.tab', opts())).rejects.toMatchObject({ code: 'POLICY_VIOLATION' });
  });

  // fixed (security: H6 ta-runtime sources): /dev/zero was read until the process ran out of
  // memory and a FIFO blocked the reconcile loop forever.
  it('refuses devices, FIFOs and directories instead of reading them without end (fixed)', async () => {
    await expect(readSource('/dev/zero', opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/not a regular file/) });
    await expect(readSource('file:///dev/urandom', opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(readSource(t.dir, opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    const fifo = join(t.dir, 'tas', 'fifo.tab');
    execFileSync('mkfifo', [fifo]);
    await expect(readSource('fifo.tab', opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('refuses a symlink in the bundle directory that points at a device', async () => {
    symlinkSync('/dev/zero', join(t.dir, 'tas', 'zero.tab'));
    await expect(readSource('zero.tab', opts())).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('refuses files over the size limit before reading them', async () => {
    const big = join(t.dir, 'big.tab');
    execFileSync('truncate', ['-s', String(MAX_BUNDLE_BYTES + 1), big]);
    await expect(readSource(big, opts())).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('https: refuses redirects and bodies over the limit, whatever content-length says', async () => {
    const calls: RequestInit[] = [];
    const redirecting = (async (_u: string, init: RequestInit) => {
      calls.push(init);
      throw new TypeError('unexpected redirect');
    }) as unknown as typeof fetch;
    await expect(readSource('https://bundles.example/x.tab', { ...opts(), fetch: redirecting })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(calls[0]!.redirect).toBe('error');
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const endless = (async () =>
      new Response(
        new ReadableStream({
          pull(c) {
            sent += chunk.length;
            c.enqueue(chunk);
          },
        }),
        { status: 200, headers: { 'content-length': '10' } },
      )) as unknown as typeof fetch;
    await expect(readSource('https://bundles.example/x.tab', { ...opts(), fetch: endless })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(sent).toBeLessThan(MAX_BUNDLE_BYTES + 4 * chunk.length);
    const lying = (async () => new Response('x', { status: 200, headers: { 'content-length': String(MAX_BUNDLE_BYTES + 1) } })) as unknown as typeof fetch;
    await expect(readSource('https://bundles.example/x.tab', { ...opts(), fetch: lying })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('inline base64 must be base64 and still goes through admission', async () => {
    await expect(readSource('base64:not base64!', opts())).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    const bytes = await readSource('base64:' + Buffer.from(good).toString('base64'), opts());
    expect((await admit(bytes)).signerId).toBe(trusted.signerId);
  });
});
