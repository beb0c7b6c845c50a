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

const BROKEN_ATTEST_TA = `module.exports = { commands: {
  attest: async () => { throw new Error('key not provisioned'); },
} };`;

const t = tempDir('ee-sec-o4-');
let rt: TARuntime;
let ca: string;

beforeAll(async () => {
  ({ rt, ca } = await runtimeWithDevice(t.dir, {
    plain: ECHO_TA,
    own: { code: OWN_ATTEST_TA, attest: true },
    // Has an attest command but does not declare it: never called for evidence.
    undeclared: OWN_ATTEST_TA,
    broken: { code: BROKEN_ATTEST_TA, attest: true },
  }));
});
afterAll(async () => {
  await rt.stop();
  t.cleanup();
});

const attest = (ta: string, claims?: Record<string, unknown>, nonce = randomBytes(16).toString('hex')) => {
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

describe('whether a TA attests itself is declared, never discovered (no silent downgrade)', () => {
  it('padded, unpadded and hex forms of one nonce give the same TA-made evidence, eat_nonce as unpadded base64url', async () => {
    for (const nonce of ['AAECAwQFBgc', 'AAECAwQFBgc=', '0001020304050607']) {
      const { token } = (await attest('own', undefined, nonce).req) as { token: string };
      const v = await verifyEvidence(token, { trustAnchors: ca, nonce: 'AAECAwQFBgc', policy: { allowEmulated: true } });
      expect(v.accepted, nonce).toBe(true);
      expect(v.accepted && v.claims.claims).toEqual({ assertedBy: 'ta' }); // the TA's evidence, not a runtime fallback
      expect(v.accepted && v.claims.eat_nonce).toBe('AAECAwQFBgc');
    }
    await expect(attest('own', undefined, 'AAECAwQFBgc==').req).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/padding optional/) });
  });

  it('a failing TA attest reaches the caller as that error, not as runtime-only evidence', async () => {
    await expect(attest('broken').req).rejects.toMatchObject({ code: 'TA_ERROR', message: expect.stringMatching(/key not provisioned/) });
  });

  it('an attest command the manifest does not declare is not called: the runtime issues the evidence', async () => {
    const { nonce, req } = attest('undeclared');
    const { token } = (await req) as { token: string };
    const v = await verifyEvidence(token, { trustAnchors: ca, nonce: Buffer.from(nonce, 'hex'), policy: { allowEmulated: true } });
    expect(v.accepted && v.claims.claims).toBeUndefined();
  });
});
