// Platform evidence with the tpm root: a TPM quote in the EAT, verified by the attestation library (real swtpm).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { openTpmRoot, createTrustServices, initDeviceIdentity, loadDeviceChain, devicePaths, TpmDriver, openSoftwareRoot, type TpmRootOfTrust } from '@enclave-edge/trust';
import { verifyEvidence, issueEvidence, quoteQualifyingData, parseTpmsAttestQuote, TPM_GENERATED_VALUE, type TpmQuoteClaim } from '@enclave-edge/attestation';
import { startSwtpm, type Swtpm } from '../../../tests/support/swtpm.js';
import { tempDir, identity } from './helpers.js';

let tpm: Swtpm;
let t: ReturnType<typeof tempDir>;
let root: TpmRootOfTrust;
let ca: string;
let chain: string[];

beforeAll(async () => {
  tpm = await startSwtpm();
  t = tempDir('ee-tpm-attest-');
  root = await openTpmRoot({ stateDir: t.dir, tcti: tpm.tcti });
  await initDeviceIdentity({ root, mode: 'self-signed' });
  ca = readFileSync(devicePaths(t.dir).ca, 'utf8');
  chain = (await loadDeviceChain(root))!;
});
afterAll(async () => {
  await root?.close();
  await tpm?.stop();
  t?.cleanup();
});

const ta = { ...identity(), name: 'kv' };
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

async function quoteClaim(r: TpmRootOfTrust, qualifyingData: Uint8Array): Promise<TpmQuoteClaim> {
  const q = await r.quoter.quote(qualifyingData);
  return { attest: b64u(q.attest), sig: b64u(q.signature), pcrs: q.pcrs };
}

/** Evidence signed by the real device key, with whatever quote the test hands in. */
function evidenceWith(nonce: Uint8Array, quote: (qd: Uint8Array) => Promise<TpmQuoteClaim>, rot = 'tpm') {
  return issueEvidence({ signer: root.attestationSigner, chain, nonce, ta, tee: 'sgx', rot, quote });
}

describe('TPM quote in evidence', () => {
  it('a tpm-rooted attest carries a quote over sha256:0-7 bound to the nonce; it verifies', async () => {
    const svc = createTrustServices({ rootOfTrust: root });
    const nonce = randomBytes(32);
    const token = await svc.attest(ta, { nonce, tee: 'sgx' });
    const v = await verifyEvidence(token, { trustAnchors: ca, nonce });
    expect(v.accepted, JSON.stringify(v)).toBe(true);
    if (!v.accepted) return;
    expect(v.claims.rot).toBe('tpm');
    expect(Object.keys(v.platform!.pcrs)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => `sha256:${i}`));
    const q = parseTpmsAttestQuote(Buffer.from(v.claims.tpm_quote!.attest, 'base64url'));
    expect(q.magic).toBe(TPM_GENERATED_VALUE);
    expect(Buffer.from(q.extraData)).toEqual(Buffer.from(quoteQualifyingData(nonce)));
  });

  it('reference PCR values in the policy are checked; an extended PCR is refused', async () => {
    const svc = createTrustServices({ rootOfTrust: root });
    const n1 = randomBytes(16);
    const v1 = await verifyEvidence(await svc.attest(ta, { nonce: n1, tee: 'sgx' }), { trustAnchors: ca, nonce: n1 });
    if (!v1.accepted) throw new Error(v1.message);
    const reference = { 'sha256:0': v1.platform!.pcrs['sha256:0']!, 'sha256:7': v1.platform!.pcrs['sha256:7']! };
    const n2 = randomBytes(16);
    expect((await verifyEvidence(await svc.attest(ta, { nonce: n2, tee: 'sgx' }), { trustAnchors: ca, nonce: n2, policy: { pcrs: reference } })).accepted).toBe(true);
    const d = new TpmDriver(tpm.tcti);
    await d.pcrExtend(7, createHash('sha256').update('another boot path').digest('hex'));
    await d.close();
    const n3 = randomBytes(16);
    const v3 = await verifyEvidence(await svc.attest(ta, { nonce: n3, tee: 'sgx' }), { trustAnchors: ca, nonce: n3, policy: { pcrs: reference } });
    expect(v3).toMatchObject({ accepted: false, reason: 'pcrs', code: 'POLICY_VIOLATION', message: expect.stringContaining('sha256:7') });
    const v4 = await verifyEvidence(await svc.attest(ta, { nonce: n3, tee: 'sgx' }), { trustAnchors: ca, nonce: n3, policy: { pcrs: { 'sha256:9': '0'.repeat(64) } } });
    expect(v4).toMatchObject({ accepted: false, reason: 'pcrs', message: expect.stringContaining('does not cover sha256:9') });
  });

  it('refuses a quote for another nonce, altered PCR values, another key, or none at all', async () => {
    const nonce = randomBytes(32);
    const refused = async (token: string, part: string) =>
      expect(await verifyEvidence(token, { trustAnchors: ca, nonce })).toMatchObject({ accepted: false, reason: 'quote', code: 'ATTESTATION_INVALID', message: expect.stringContaining(part) });

    await refused(await evidenceWith(nonce, () => quoteClaim(root, quoteQualifyingData(randomBytes(32)))), 'nonce');
    await refused(
      await evidenceWith(nonce, async (qd) => {
        const q = await quoteClaim(root, qd);
        return { ...q, pcrs: { ...q.pcrs, 'sha256:3': 'ab'.repeat(32) } };
      }),
      'altered PCR values',
    );
    await refused(
      await evidenceWith(nonce, async (qd) => {
        const q = await quoteClaim(root, qd);
        const { ['sha256:7']: _drop, ...fewer } = q.pcrs;
        return { ...q, pcrs: fewer };
      }),
      'not the ones quoted',
    );
    const other = tempDir('ee-tpm-otherak-');
    const otherRoot = await openTpmRoot({ stateDir: other.dir, tcti: tpm.tcti, sealKeyHandle: 0x81010ea0, attestationKeyHandle: 0x81010ea1, counterIndex: 0x01500ea0 });
    try {
      await refused(await evidenceWith(nonce, (qd) => quoteClaim(otherRoot, qd)), 'another key');
    } finally {
      await otherRoot.close();
      other.cleanup();
    }
    const flipped = async (qd: Uint8Array) => {
      const q = await quoteClaim(root, qd);
      const a = Buffer.from(q.attest, 'base64url');
      a[a.length - 1]! ^= 1;
      return { ...q, attest: b64u(a) };
    };
    await refused(await evidenceWith(nonce, flipped), 'signature');
    await refused(await issueEvidence({ signer: root.attestationSigner, chain, nonce, ta, tee: 'sgx', rot: 'tpm' }), 'no TPM quote');
  });

  it('a policy with pcrs refuses evidence from a root without a quote', async () => {
    const s = tempDir('ee-sw-pcrs-');
    try {
      const sw = await openSoftwareRoot({ stateDir: s.dir });
      const svc = createTrustServices({ rootOfTrust: sw });
      const nonce = randomBytes(16);
      const token = await svc.attest(ta, { nonce, tee: 'sgx' });
      const swCa = readFileSync(devicePaths(s.dir).ca, 'utf8');
      expect(await verifyEvidence(token, { trustAnchors: swCa, nonce, policy: { pcrs: { 'sha256:0': '0'.repeat(64) } } })).toMatchObject({ accepted: false, reason: 'pcrs', message: expect.stringContaining('no TPM quote') });
      await svc.close();
    } finally {
      s.cleanup();
    }
  });

  it('a TPM reset shows in the quote (resetCount) and keys still verify', async () => {
    const svc = createTrustServices({ rootOfTrust: root });
    const n1 = randomBytes(16);
    const v1 = await verifyEvidence(await svc.attest(ta, { nonce: n1, tee: 'sgx' }), { trustAnchors: ca, nonce: n1 });
    await tpm.restart();
    const n2 = randomBytes(16);
    const v2 = await verifyEvidence(await svc.attest(ta, { nonce: n2, tee: 'sgx' }), { trustAnchors: ca, nonce: n2 });
    if (!v1.accepted || !v2.accepted) throw new Error('not accepted');
    expect(v2.platform!.resetCount).toBe(v1.platform!.resetCount + 1);
  });
});
