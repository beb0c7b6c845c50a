import 'reflect-metadata';
import { describe, it, expect, beforeAll } from 'vitest';
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { jwtVerify, decodeProtectedHeader, importX509 } from 'jose';
import * as x509 from '@peculiar/x509';
import {
  issueEvidence, verifyEvidence, verifyEvidenceOrThrow, nodeKeySigner, createDevelopmentCa, issueDeviceCertificate,
  createCsr, pemToX5c, MemoryReplayCache, parsePolicy, EAT_PROFILE, type EvidenceSigner, type AttestedTA,
} from '@enclave-edge/attestation';

const ta: AttestedTA = {
  name: 'kv', uuid: '6f1c7c52-8e0b-4d0e-9d2a-1c3b5a7d9e01', version: '1.2.0',
  measurement: 'a'.repeat(64), signerId: 'b'.repeat(64), productId: 7, securityVersion: 3, debug: false,
};

let caPem: string;
let chain: string[];
let signer: EvidenceSigner;
let otherCaPem: string;

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  caPem = ca.certPem;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  signer = nodeKeySigner(privateKey);
  const dev = await issueDeviceCertificate({ ca, subjectSpki: signer.spki });
  chain = pemToX5c(dev.toString('pem'));
  otherCaPem = (await createDevelopmentCa({ subject: 'CN=someone else' })).certPem;
});

const nonce = () => randomBytes(16);
const lenient = { allowEmulated: true };

async function token(over: Partial<Parameters<typeof issueEvidence>[0]> = {}) {
  return issueEvidence({ signer, chain, nonce: over.nonce ?? nonce(), ta, tee: 'sgx', rot: 'pkcs11', ...over });
}

function tamperSegment(t: string, seg: number, mutate: (s: string) => string): string {
  const parts = t.split('.');
  parts[seg] = mutate(parts[seg]!);
  return parts.join('.');
}

describe('issueEvidence', () => {
  it('produces an ES256 EAT with x5c and the profile claims', async () => {
    const n = nonce();
    const pub = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const t = await token({ nonce: n, publicKey: pub as Record<string, unknown>, claims: { model: 'm1', n: 3 } });
    const h = decodeProtectedHeader(t);
    expect(h).toMatchObject({ alg: 'ES256', typ: 'eat+jwt' });
    expect(h.x5c).toEqual(chain);
    const v = await verifyEvidence(t, { trustAnchors: caPem, nonce: n, policy: {} });
    expect(v.accepted).toBe(true);
    if (!v.accepted) return;
    expect(v.claims).toMatchObject({
      eat_profile: EAT_PROFILE, eat_nonce: n.toString('base64url'), dbgstat: 1, tee: 'sgx', rot: 'pkcs11',
      unique_id: ta.measurement, signer_id: ta.signerId, product_id: 7, security_version: 3, attributes: 2,
      ta: { name: 'kv', uuid: ta.uuid, version: '1.2.0' }, cnf: { jwk: pub }, claims: { model: 'm1', n: 3 },
    });
    expect(v.claims.exp - v.claims.iat).toBe(300);
    const ueid = Buffer.from(v.claims.ueid, 'base64url');
    expect([ueid.length, ueid[0]]).toEqual([33, 0x01]); // UEID type RAND, 32 bytes
    expect(v.chain[0]).toMatch(/device attestation/);
  });

  it('refuses a private JWK and bad nonces', async () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    await expect(token({ publicKey: jwk as Record<string, unknown> })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
    await expect(token({ nonce: new Uint8Array(4) })).rejects.toThrow(/nonce must be 8\.\.55 bytes/);
    await expect(token({ nonce: 'not base64!' })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });

  it('interop: plain jose verifies the token with the leaf certificate public key', async () => {
    const t = await token();
    const leafPem = new X509Certificate(Buffer.from(chain[0]!, 'base64')).toString();
    const key = await importX509(leafPem, 'ES256');
    const { payload, protectedHeader } = await jwtVerify(t, key, { algorithms: ['ES256'], typ: 'eat+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.unique_id).toBe(ta.measurement);
  });
});

describe('verifyEvidence refuses, with its reason', () => {
  it('a tampered payload', async () => {
    const t = await token();
    const bad = tamperSegment(t, 1, (p) => {
      const c = JSON.parse(Buffer.from(p, 'base64url').toString());
      c.security_version = 99;
      return Buffer.from(JSON.stringify(c)).toString('base64url');
    });
    expect(await verifyEvidence(bad, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'signature', code: 'ATTESTATION_INVALID' });
  });

  it('a tampered signature', async () => {
    const t = await token();
    const bad = tamperSegment(t, 2, (s) => {
      const b = Buffer.from(s, 'base64url');
      b[10]! ^= 1;
      return b.toString('base64url');
    });
    expect(await verifyEvidence(bad, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'signature' });
  });

  it('a chain that does not lead to the trust anchor', async () => {
    const v = await verifyEvidence(await token(), { trustAnchors: otherCaPem });
    expect(v).toMatchObject({ accepted: false, reason: 'chain', code: 'ATTESTATION_INVALID' });
    if (!v.accepted) expect(v.message).toMatch(/does not lead to a trusted anchor/);
  });

  it('a token signed by a key other than the certificate key', async () => {
    const rogue = nodeKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const t = await issueEvidence({ signer: rogue, chain, nonce: nonce(), ta, tee: 'sgx', rot: 'software' });
    expect(await verifyEvidence(t, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'signature' });
  });

  it('an expired token, and one older than maxAgeSeconds', async () => {
    const t = await token({ ttlSeconds: 60 });
    const later = new Date(Date.now() + 120_000);
    expect(await verifyEvidence(t, { trustAnchors: caPem, now: later })).toMatchObject({ accepted: false, reason: 'expired' });
    const long = await token({ ttlSeconds: 3600 });
    const v = await verifyEvidence(long, { trustAnchors: caPem, now: new Date(Date.now() + 600_000), policy: { maxAgeSeconds: 300 } });
    expect(v).toMatchObject({ accepted: false, reason: 'too-old' });
    expect(await verifyEvidence(t, { trustAnchors: caPem, now: new Date(Date.now() - 50_000) })).toMatchObject({ accepted: false, reason: 'not-yet-valid' });
  });

  it('a certificate that is expired at verification time', async () => {
    const t = await token({ ttlSeconds: 3600 });
    const v = await verifyEvidence(t, { trustAnchors: caPem, now: new Date(Date.now() + 900 * 86_400_000) });
    expect(v).toMatchObject({ accepted: false, reason: 'chain' });
  });

  it('a wrong nonce (bytes, hex and base64url forms all compared as bytes)', async () => {
    const n = nonce();
    const t = await token({ nonce: n });
    expect(await verifyEvidence(t, { trustAnchors: caPem, nonce: nonce() })).toMatchObject({ accepted: false, reason: 'nonce' });
    expect((await verifyEvidence(t, { trustAnchors: caPem, nonce: n.toString('hex') })).accepted).toBe(true);
    expect((await verifyEvidence(t, { trustAnchors: caPem, nonce: n.toString('base64url') })).accepted).toBe(true);
  });

  it('a replayed token', async () => {
    const cache = new MemoryReplayCache();
    const t = await token();
    expect((await verifyEvidence(t, { trustAnchors: caPem, replayCache: cache })).accepted).toBe(true);
    expect(await verifyEvidence(t, { trustAnchors: caPem, replayCache: cache })).toMatchObject({ accepted: false, reason: 'replay' });
    // A malleated signature (s → n−s) is still the same token.
    expect(cache.size).toBe(1);
  });

  it('a debug TA against a strict policy (and accepts it when allowed)', async () => {
    const t = await token({ ta: { ...ta, debug: true } });
    expect(await verifyEvidence(t, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'debug', code: 'POLICY_VIOLATION' });
    const ok = await verifyEvidence(t, { trustAnchors: caPem, policy: { allowDebug: true } });
    expect(ok.accepted).toBe(true);
    if (ok.accepted) expect(ok.warnings.join()).toMatch(/debug/);
  });

  it('emulated evidence against a strict policy (and accepts it when allowed)', async () => {
    const t = await token({ tee: 'emulated', rot: 'software' });
    const v = await verifyEvidence(t, { trustAnchors: caPem });
    expect(v).toMatchObject({ accepted: false, reason: 'emulated', code: 'POLICY_VIOLATION' });
    if (!v.accepted) expect(v.claims?.tee).toBe('emulated');
    const ok = await verifyEvidence(t, { trustAnchors: caPem, policy: lenient });
    expect(ok.accepted).toBe(true);
    if (ok.accepted) expect(ok.warnings.join()).toMatch(/software.*development-grade/);
  });

  it('measurement, signer, product, SVN and root-of-trust policy', async () => {
    const t = await token();
    const check = async (policy: object, reason: string) =>
      expect(await verifyEvidence(t, { trustAnchors: caPem, policy })).toMatchObject({ accepted: false, reason });
    await check({ allowedMeasurements: ['c'.repeat(64)] }, 'measurement');
    await check({ allowedSigners: ['c'.repeat(64)] }, 'signer');
    await check({ productIds: [1, 2] }, 'product');
    await check({ minSecurityVersion: 4 }, 'svn');
    await check({ allowedRootsOfTrust: ['workload'] }, 'rot');
    const ok = await verifyEvidence(t, {
      trustAnchors: caPem,
      policy: { allowedMeasurements: ['A'.repeat(64)], allowedSigners: ['b'.repeat(64)], productIds: [7], minSecurityVersion: 3, allowedRootsOfTrust: ['pkcs11'] },
    });
    expect(ok.accepted).toBe(true);
  });

  it('malformed input and policies', async () => {
    expect(await verifyEvidence('abc', { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'malformed' });
    const t = await token();
    const noX5c = tamperSegment(t, 0, () => Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url'));
    expect(await verifyEvidence(noX5c, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'chain' });
    const none = tamperSegment(t, 0, () => Buffer.from(JSON.stringify({ alg: 'none', x5c: chain })).toString('base64url'));
    expect(await verifyEvidence(none, { trustAnchors: caPem })).toMatchObject({ accepted: false, reason: 'malformed' });
    expect(() => parsePolicy({ allowDebug: 'yes' })).toThrow(/allowDebug/);
    expect(() => parsePolicy({ allowedMeasurement: [] })).toThrow(/invalid verifier policy/);
    await expect(verifyEvidenceOrThrow(await token({ tee: 'emulated' }), { trustAnchors: caPem })).rejects.toMatchObject({ code: 'POLICY_VIOLATION', message: expect.stringMatching(/emulated/) });
    await expect(verifyEvidence(t, { trustAnchors: 'no pem here' })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('a chain through an intermediate CA verifies; a leaf posing as CA does not', async () => {
    const root = await createDevelopmentCa({ subject: 'CN=root' });
    // Intermediate: a CA certificate signed by root.
    const interKey = nodeKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const interLeafShaped = await issueDeviceCertificate({ ca: root, subjectSpki: interKey.spki, subject: 'CN=not a CA' });
    const dev = await issueDeviceCertificate({ ca: { cert: interLeafShaped, signer: interKey }, subjectSpki: signer.spki });
    const t = await issueEvidence({ signer, chain: [...pemToX5c(dev.toString('pem')), ...pemToX5c(interLeafShaped.toString('pem'))], nonce: nonce(), ta, tee: 'sgx', rot: 'pkcs11' });
    const v = await verifyEvidence(t, { trustAnchors: root.certPem });
    expect(v).toMatchObject({ accepted: false, reason: 'chain' });
    if (!v.accepted) expect(v.message).toMatch(/not a CA certificate/);
  });
});

describe('CSR for an operator CA', () => {
  it('is signed by the device key and names the subject', async () => {
    const pem = await createCsr({ signer, subject: 'CN=device-42, O=Contoso' });
    const csr = new x509.Pkcs10CertificateRequest(pem);
    expect(csr.subject).toMatch(/CN=device-42/);
    expect(await csr.verify()).toBe(true);
    const spki = Buffer.from(csr.publicKey.rawData);
    expect(spki.equals(Buffer.from(signer.spki))).toBe(true);
  });
});
