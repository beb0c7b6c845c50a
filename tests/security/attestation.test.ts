/**
 * The evidence verifier against forged, altered, stale and replayed evidence, and the strict
 * default policy (no debug, no emulated). Real ES256, real X.509 chains.
 */
import 'reflect-metadata';
import { describe, it, expect, beforeAll } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { issueEvidence, verifyEvidence, nodeKeySigner, createDevelopmentCa, issueDeviceCertificate, MemoryReplayCache, type EvidenceSigner } from '@enclave-edge/attestation';
import { identity } from './helpers.js';

let anchorPem: string;
let chain: string[];
let signer: EvidenceSigner;
let otherChain: string[];
let otherSigner: EvidenceSigner;

const der = (c: { rawData: ArrayBuffer }) => Buffer.from(c.rawData).toString('base64');

async function device(): Promise<{ signer: EvidenceSigner; chain: string[]; caPem: string }> {
  const ca = await createDevelopmentCa();
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const s = nodeKeySigner(key.privateKey);
  const cert = await issueDeviceCertificate({ ca, subjectSpki: s.spki });
  return { signer: s, chain: [der(cert), der(ca.cert)], caPem: ca.certPem };
}

const issue = (o: Partial<Parameters<typeof issueEvidence>[0]> = {}) =>
  issueEvidence({ signer, chain, nonce: o.nonce ?? 'n0nce-n0nce', ta: identity(), tee: 'sgx', rot: 'pkcs11', ...o });

beforeAll(async () => {
  const d = await device();
  ({ signer, chain } = d);
  anchorPem = d.caPem;
  const o = await device();
  otherSigner = o.signer;
  otherChain = o.chain;
});

describe('evidence verification', () => {
  it('accepts authentic, fresh evidence with the expected nonce', async () => {
    const nonce = randomBytes(16);
    const v = await verifyEvidence(await issue({ nonce }), { trustAnchors: anchorPem, nonce });
    expect(v.accepted).toBe(true);
  });

  it('refuses a payload altered after signing (e.g. tee or measurement rewritten)', async () => {
    const [h, p, s] = (await issue()).split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    for (const change of [{ tee: 'emulated-not' }, { unique_id: 'a'.repeat(64) }, { dbgstat: 1 - claims.dbgstat }, { security_version: 999 }]) {
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, ...change })).toString('base64url')}.${s}`;
      expect(await verifyEvidence(forged, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'signature' });
    }
  });

  it('refuses evidence from another device CA, and a leaf presented as its own anchor', async () => {
    const foreign = await issueEvidence({ signer: otherSigner, chain: otherChain, nonce: 'n0nce-n0nce', ta: identity(), tee: 'sgx', rot: 'pkcs11' });
    expect(await verifyEvidence(foreign, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'chain' });
    // the attacker's own key with our device CA copied into x5c: the leaf is not signed by it
    const spliced = await issueEvidence({ signer: otherSigner, chain: [otherChain[0]!, chain[1]!], nonce: 'n0nce-n0nce', ta: identity(), tee: 'sgx', rot: 'pkcs11' });
    expect(await verifyEvidence(spliced, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'chain' });
    // our leaf with the attacker's key signing: signature check fails against the leaf key
    const wrongKey = await issueEvidence({ signer: otherSigner, chain, nonce: 'n0nce-n0nce', ta: identity(), tee: 'sgx', rot: 'pkcs11' });
    expect(await verifyEvidence(wrongKey, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'signature' });
  });

  it('refuses unsigned or HMAC tokens and headers without x5c', async () => {
    const [, p] = (await issue()).split('.');
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    for (const header of [{ alg: 'none', x5c: chain }, { alg: 'HS256', x5c: chain }, { alg: 'ES256' }, { alg: 'ES256', x5c: chain, crit: ['x'] }]) {
      const v = await verifyEvidence(`${b64(header)}.${p}.AAAA`, { trustAnchors: anchorPem });
      expect(v.accepted).toBe(false);
    }
    expect((await verifyEvidence(`${b64({ alg: 'none', x5c: chain })}.${p}.`, { trustAnchors: anchorPem })).accepted).toBe(false);
  });

  it('refuses a wrong nonce, expired or future evidence, and a replay', async () => {
    const nonce = randomBytes(16);
    const token = await issue({ nonce });
    expect(await verifyEvidence(token, { trustAnchors: anchorPem, nonce: randomBytes(16) })).toMatchObject({ accepted: false, reason: 'nonce' });
    const later = new Date(Date.now() + 3600_000);
    expect(await verifyEvidence(token, { trustAnchors: anchorPem, nonce, now: later })).toMatchObject({ accepted: false, reason: 'expired' });
    const future = await issue({ nonce, now: new Date(Date.now() + 3600_000) });
    expect(await verifyEvidence(future, { trustAnchors: anchorPem, nonce })).toMatchObject({ accepted: false, reason: 'not-yet-valid' });
    const cache = new MemoryReplayCache();
    expect((await verifyEvidence(token, { trustAnchors: anchorPem, nonce, replayCache: cache })).accepted).toBe(true);
    expect(await verifyEvidence(token, { trustAnchors: anchorPem, nonce, replayCache: cache })).toMatchObject({ accepted: false, reason: 'replay' });
    // a re-encoded signature (ECDSA malleability) is still the same token for replay purposes
    const [h, p, s] = token.split('.');
    const sig = Buffer.from(s!, 'base64url');
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const sBig = BigInt('0x' + sig.subarray(32).toString('hex'));
    const flipped = Buffer.concat([sig.subarray(0, 32), Buffer.from((n - sBig).toString(16).padStart(64, '0'), 'hex')]);
    const malleated = `${h}.${p}.${flipped.toString('base64url')}`;
    expect(await verifyEvidence(malleated, { trustAnchors: anchorPem, nonce, replayCache: cache })).toMatchObject({ accepted: false });
  });

  it('the default policy is strict: debug and emulated evidence are refused, software roots warned about', async () => {
    const dbg = await issue({ ta: identity({ debug: true }) });
    expect(await verifyEvidence(dbg, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'debug', code: 'POLICY_VIOLATION' });
    const emu = await issue({ tee: 'emulated' });
    expect(await verifyEvidence(emu, { trustAnchors: anchorPem })).toMatchObject({ accepted: false, reason: 'emulated' });
    const soft = await issue({ rot: 'software' });
    const v = await verifyEvidence(soft, { trustAnchors: anchorPem });
    expect(v.accepted && v.warnings.join(' ')).toMatch(/development-grade/);
    expect(await verifyEvidence(soft, { trustAnchors: anchorPem, policy: { allowedRootsOfTrust: ['pkcs11', 'workload'] } })).toMatchObject({ accepted: false, reason: 'rot' });
  });

  it('allowedTees is an allow-list: a backend not listed is refused even when it is not "emulated"', async () => {
    const other = await issue({ tee: 'custom-software' });
    expect((await verifyEvidence(other, { trustAnchors: anchorPem })).accepted).toBe(true);
    expect(await verifyEvidence(other, { trustAnchors: anchorPem, policy: { allowedTees: ['sgx', 'optee'] } })).toMatchObject({ accepted: false, reason: 'tee', code: 'POLICY_VIOLATION' });
    expect((await verifyEvidence(await issue(), { trustAnchors: anchorPem, policy: { allowedTees: ['sgx'] } })).accepted).toBe(true);
  });

  it('evidence never carries a private key, even if a caller offers one as the TA key', async () => {
    const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    await expect(issue({ publicKey: jwk as Record<string, unknown> })).rejects.toMatchObject({ code: 'BAD_PARAMETERS' });
  });
});
