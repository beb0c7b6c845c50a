/**
 * O4 (fixed, security: H5 for ta-runtime attest): for a TA without its own `attest` command the
 * runtime issued evidence itself and copied the caller's `claims` into it, so the device key
 * signed statements the TA never made, chosen by the (untrusted) host. Now runtime-issued
 * evidence carries no caller claims and a request with claims for such a TA is refused;
 * `claims` in evidence are always the TA's own (asserted through ctx.attest).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TARuntime } from '@enclave-edge/ta-runtime';
import { verifyEvidence } from '@enclave-edge/attestation';
import { ECHO_TA } from './bundles.js';
import { runtimeWithDevice, tempDir } from './helpers.js';

const OWN_ATTEST_TA = `module.exports = { commands: {
  attest: async (ctx, p) => ({ evidence: await ctx.attest({ nonce: p.nonce, claims: { assertedBy: 'ta' } }) }),
} };`;

const t = tempDir('ee-sec-o4-');
let rt: TARuntime;
let ca: string;

beforeAll(async () => {
  ({ rt, ca } = await runtimeWithDevice(t.dir, { plain: ECHO_TA, own: OWN_ATTEST_TA }));
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
