/**
 * O4 (fixed, security: H5 for ta-runtime attest): for a TA without its own `attest` command the
 * runtime issued evidence itself and copied the caller's `claims` into it, so the device key
 * signed statements the TA never made, chosen by the (untrusted) host. Now runtime-issued
 * evidence carries no caller claims and a request with claims for such a TA is refused;
 * `claims` in evidence are always the TA's own (asserted through ctx.attest).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { TARuntime } from '@enclave-edge/ta-runtime';
import { openSoftwareRoot, createTrustServices, initDeviceIdentity, devicePaths } from '@enclave-edge/trust';
import { verifyEvidence } from '@enclave-edge/attestation';
import { createLogger } from '@enclave-edge/observability';
import { newSigner, signedBundle, ECHO_TA } from './bundles.js';
import { tempDir } from './helpers.js';

const OWN_ATTEST_TA = `module.exports = { commands: {
  attest: async (ctx, p) => ({ evidence: await ctx.attest({ nonce: p.nonce, claims: { assertedBy: 'ta' } }) }),
} };`;

const t = tempDir('ee-sec-o4-');
let rt: TARuntime;
let ca: string;

beforeAll(async () => {
  const root = await openSoftwareRoot({ stateDir: t.dir });
  await initDeviceIdentity({ root, mode: 'self-signed' });
  ca = readFileSync(devicePaths(root.stateDir).ca, 'utf8');
  const services = createTrustServices({ rootOfTrust: root });
  const signer = newSigner();
  const log = createLogger({ name: 'sec', level: 'fatal', destination: { write: () => undefined } });
  rt = new TARuntime({ backend: new EmulatedBackend(), services, log, sources: { bundleDir: '/nonexistent' }, drainMs: 200, events: { event() {}, report() {} } });
  const plain = await signedBundle(signer, ECHO_TA, { name: 'plain' });
  const own = await signedBundle(signer, OWN_ATTEST_TA, { name: 'own' });
  const src = (b: Uint8Array) => ({ source: 'base64:' + Buffer.from(b).toString('base64') });
  await rt.reconcile({ policy: { trustedSigners: { mine: signer.signerId }, allowEmulated: true }, tas: { plain: src(plain), own: src(own) } });
});
afterAll(async () => {
  await rt.stop();
  t.cleanup();
});

const attest = (ta: string, claims?: Record<string, unknown>) => {
  const nonce = randomBytes(16).toString('hex');
  return { nonce, req: rt.dispatch({ id: randomBytes(4).toString('hex'), op: 'attest', ta, nonce, deadline: Date.now() + 10_000, ...(claims ? { claims } : {}) } as never) };
};

describe('caller claims in runtime-issued evidence', () => {
  it('a TA without an attest command: caller claims are refused, not signed', async () => {
    await expect(attest('plain', { role: 'admin', approved: true }).req).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/does not sign caller claims/) });
  });

  it('without claims the runtime still issues evidence for the TA identity, with no claims in it', async () => {
    const { nonce, req } = attest('plain');
    const { token } = (await req) as { token: string };
    const v = await verifyEvidence(token, { trustAnchors: ca, nonce: Buffer.from(nonce, 'hex'), policy: { allowEmulated: true } });
    expect(v.accepted).toBe(true);
    expect(v.accepted && v.claims.ta.name).toBe('plain');
    expect(v.accepted && v.claims.claims).toBeUndefined();
  });

  it('a TA with its own attest command asserts its own claims (caller claims go to the TA, which decides)', async () => {
    const { nonce, req } = attest('own', { role: 'admin' });
    const { token } = (await req) as { token: string };
    const v = await verifyEvidence(token, { trustAnchors: ca, nonce: Buffer.from(nonce, 'hex'), policy: { allowEmulated: true } });
    expect(v.accepted).toBe(true);
    expect(v.accepted && v.claims.claims).toEqual({ assertedBy: 'ta' });
  });
});
